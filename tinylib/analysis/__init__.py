"""Analyses of the papers' claims: object scales, template clustering, receptive fields,
parameters and FLOPs (import the submodules explicitly)."""
