"""softjax: the smooth arg max and its relatives, one family of functions indexed by β."""

from softjax.smooth import argmax_onehot as argmax_onehot
from softjax.smooth import argmin_onehot as argmin_onehot
from softjax.smooth import log_softargmax as log_softargmax
from softjax.smooth import logsumexp as logsumexp
from softjax.smooth import mellowmax as mellowmax
from softjax.smooth import smooth_max as smooth_max
from softjax.smooth import smooth_min as smooth_min
from softjax.smooth import softargmax as softargmax
from softjax.smooth import softargmin as softargmin

__version__ = "0.1.0.dev0"

__all__ = [
    "argmax_onehot",
    "argmin_onehot",
    "log_softargmax",
    "logsumexp",
    "mellowmax",
    "smooth_max",
    "smooth_min",
    "softargmax",
    "softargmin",
]
