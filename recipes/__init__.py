"""Training recipes (run as scripts): pretrain, finetune, scaling, cka. See README "Models and recipes"."""
