"""Models: baselines, matrix factorisation and the hybrid, all exported to one scoring contract."""

from movierec.models.factors import FactorModel, FactorParams, UserVector

__all__ = ["FactorModel", "FactorParams", "UserVector"]
