"""Training recipes (run as scripts): pretrain, finetune, scaling, cka. See docs/reference/recipes.md."""
