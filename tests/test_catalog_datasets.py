"""Catalog entries for external upstream datasets (CMS / ATLAS Open Data): parsed into frozen
dataclasses and validated, each naming a format one of the readers reads."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from hepfm_data.core.catalog import DATASET_FORMATS, parse_catalog
from hepfm_data.core.errors import CatalogError, UnknownNameError
from hepfm_data.readers.formats import FORMATS


def _raw():
    from importlib import resources

    return yaml.safe_load(resources.files("hepfm_data.core").joinpath("catalog.yaml").read_text())


def test_shipped_datasets_cover_the_studies():
    """The shipped catalog lists the CMS records of Kishimoto et al. (data + simulation, NanoAOD) and the
    ATLAS Open Data (PHYSLITE); entries are frozen, external, and their formats have readers."""
    cat = parse_catalog(_raw(), "catalog.yaml")
    by = {d.name: d for d in cat.datasets}
    assert {"cms_btagcsv_run2016g", "cms_btagcsv_run2016h", "cms_ttjets_amcatnlofxfx",
            "cms_chargedhiggs_hplustb_m300", "cms_tthtobb_powheg"} <= set(by)
    assert {by[n].kind for n in ("cms_btagcsv_run2016g", "cms_btagcsv_run2016h")} == {"collision-data"}
    assert {d.format for d in cat.datasets if d.experiment == "CMS"} == {"nanoaod"}
    assert {d.format for d in cat.datasets if d.experiment == "ATLAS"} == {"physlite"}
    assert all(d.fidelity == "external" for d in cat.datasets)
    assert set(DATASET_FORMATS) == set(FORMATS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        by["cms_tthtobb_powheg"].format = "delphes"
    assert cat.dataset("cms_tthtobb_powheg").study == "kishimoto2025"
    with pytest.raises(UnknownNameError, match="unknown dataset 'nope'"):
        cat.dataset("nope")


@pytest.mark.parametrize("key,value,match", [
    ("format", "miniaod", r"datasets\[0\] cms_btagcsv_run2016g', field 'format': must be one of delphes"),
    ("kind", "data", r"field 'kind': must be one of collision-data, simulation"),
    ("study", "nobody", r"field 'study': unknown citation key 'nobody'"),
    ("url", "ftp://x", r"field 'url': must be an http\(s\) URL"),
    ("fidelity", "native", r"field 'fidelity': must be one of external"),
    ("name", "ttH", r"field 'name': duplicate name 'ttH'"),
    ("colour", "red", r"field 'colour': unknown key"),
])
def test_bad_dataset_entries_are_refused(key, value, match):
    """Each malformed dataset entry raises CatalogError naming the entry and the field."""
    raw = copy.deepcopy(_raw())
    raw["datasets"][0][key] = value
    with pytest.raises(CatalogError, match=match):
        parse_catalog(raw, "catalog.yaml")
