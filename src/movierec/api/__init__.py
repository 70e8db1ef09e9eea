"""The public Python API. ``import movierec`` re-exports every name listed in ``movierec.__all__``; import from
there (``movierec.fit``), not from these modules, whose layout may change."""
