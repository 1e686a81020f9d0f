"""Check modules, one per area. Each registers its checks with :func:`proofs_check.registry.check`."""

# Imported in this order by proofs_check.registry.load_all(); add a module here when you add a file.
MODULES = [
    "reference_checks",
    "fastpath_checks",
    "catalogue_a",
    "symbolic_checks",
    "catalogue_b",
]
