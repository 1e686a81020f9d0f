"""Check modules, one per area. Each registers its checks with :func:`proofs_check.registry.check`."""

# Imported in this order by proofs_check.registry.load_all(); add a module here when you add a file.
MODULES = [
    "exact_main_text",  # exact checks by paper part (helper H2a): main text, App. C, D, F-G, H-K, weak points
    "exact_appendix_c",
    "exact_appendix_c_lowrank",
    "exact_appendix_d",
    "exact_appendix_d_sums",
    "exact_appendix_fg",
    "exact_appendix_hjk",
    "exact_weak_points",
    "fast_appendix_c",  # fast-path checks by paper part (helper H2b): App. C, E, F-G, I, H-J-K, main text, weak points
    "fast_appendix_e",
    "fast_appendix_fg",
    "fast_appendix_i",
    "fast_appendix_hjk",
    "fast_main_text",
    "fast_weak_points_a",
    "fast_weak_points_b",
    "fast_certificate",  # the a-posteriori certificate of issue 10 (docs/certificate.md)
    "fast_cert_limits",  # how far any certificate on the same information can be tightened (docs/certificate_limits.md)
    "fast_cert_layers",  # the per-layer growth of the propagated bound against |J|^T E
    "fast_clustered",  # the clustered kernel of issue 14 item 3 (fastpath.clustered)
    "fast_rowdegree",  # per-row polynomial degrees of issue 14 item 3 (fastpath.rowdegree)
]
