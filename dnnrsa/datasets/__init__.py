"""Stimulus and training sets: the embedded synthetic faces and scenes (the offline
default), a simulated fMRI subject with a known answer (the brain side's offline default),
and loaders for local copies of the study's real data sets, checked against
``data_manifests/``."""

from ._celeba import CELEBA_TRAIN_AUGMENT, celeba_file_list, celeba_identities, save_file_list
from ._fer2013 import fer2013
from ._kdef import kdef, parse_kdef_name
from ._manifest import list_datasets, load_manifest
from ._paths import data_root
from ._registry import check_dataset
from ._report import DatasetReport
from ._simulated_fmri import SimulatedFMRI, simulated_fmri
from ._uc_merced import uc_merced
from .synthetic import (
    DATA_VERSION,
    EXPRESSIONS,
    SCENE_CLASSES,
    VIEWPOINTS,
    synthetic_expressions,
    synthetic_faces,
    synthetic_identities,
    synthetic_scenes,
)

__all__ = [
    "SimulatedFMRI",
    "simulated_fmri",
    "CELEBA_TRAIN_AUGMENT",
    "DATA_VERSION",
    "DatasetReport",
    "EXPRESSIONS",
    "SCENE_CLASSES",
    "VIEWPOINTS",
    "celeba_file_list",
    "celeba_identities",
    "check_dataset",
    "data_root",
    "fer2013",
    "kdef",
    "list_datasets",
    "load_manifest",
    "parse_kdef_name",
    "save_file_list",
    "synthetic_expressions",
    "synthetic_faces",
    "synthetic_identities",
    "synthetic_scenes",
    "uc_merced",
]
