"""softjax: the smooth arg max and its relatives, one family of functions indexed by β."""

from softjax import dp as dp
from softjax import schedules as schedules
from softjax import semiring as semiring
from softjax.limits import beta_for_tolerance as beta_for_tolerance
from softjax.limits import is_singular as is_singular
from softjax.limits import margin as margin
from softjax.order import fermi_level as fermi_level
from softjax.order import soft_rank as soft_rank
from softjax.order import soft_sort as soft_sort
from softjax.order import soft_topk as soft_topk
from softjax.order import topk_onehot as topk_onehot
from softjax.random import gumbel_softargmax as gumbel_softargmax
from softjax.random import sample_onehot as sample_onehot
from softjax.random import straight_through as straight_through
from softjax.smooth import argmax_onehot as argmax_onehot
from softjax.smooth import argmin_onehot as argmin_onehot
from softjax.smooth import log_softargmax as log_softargmax
from softjax.smooth import logsumexp as logsumexp
from softjax.smooth import mellowmax as mellowmax
from softjax.smooth import smooth_max as smooth_max
from softjax.smooth import smooth_min as smooth_min
from softjax.smooth import softargmax as softargmax
from softjax.smooth import softargmin as softargmin
from softjax.sparse import entmax as entmax
from softjax.sparse import fenchel_young_loss as fenchel_young_loss
from softjax.sparse import sparsemax as sparsemax
from softjax.sparse import tsallis_max as tsallis_max
from softjax.thermo import boltzmann as boltzmann
from softjax.thermo import entropy as entropy
from softjax.thermo import free_energy as free_energy
from softjax.thermo import gibbs_entropy as gibbs_entropy
from softjax.thermo import heat_capacity as heat_capacity
from softjax.thermo import log_partition as log_partition
from softjax.thermo import mean_energy as mean_energy

__version__ = "0.1.0.dev0"

__all__ = [
    "argmax_onehot",
    "argmin_onehot",
    "beta_for_tolerance",
    "boltzmann",
    "dp",
    "entmax",
    "entropy",
    "fenchel_young_loss",
    "fermi_level",
    "gibbs_entropy",
    "free_energy",
    "gumbel_softargmax",
    "heat_capacity",
    "is_singular",
    "log_partition",
    "log_softargmax",
    "logsumexp",
    "margin",
    "mean_energy",
    "mellowmax",
    "schedules",
    "semiring",
    "sample_onehot",
    "smooth_max",
    "smooth_min",
    "soft_rank",
    "soft_sort",
    "soft_topk",
    "softargmax",
    "softargmin",
    "sparsemax",
    "straight_through",
    "topk_onehot",
    "tsallis_max",
]
