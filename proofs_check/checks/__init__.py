"""Check modules, one per area. Each registers its checks with :func:`proofs_check.registry.check`."""

# Imported in this order by proofs_check.registry.load_all(); add a module here when you add a file.
MODULES = [
    "reference_checks",
    "fast_appendix_c",
    "fast_appendix_e",
    "fast_appendix_fg",
    "fast_appendix_i",
    "fast_appendix_hjk",
    "catalogue_a",
    "symbolic_checks",
    "fast_main_text",
    "fast_weak_points_a",
    "fast_weak_points_b",
]
