"""Synthetic previews of conditional datasets (Shanghai Art.18: the platform offers 预览).

Before applying for a conditional dataset, anyone may download a synthetic
sample that shows its shape: the catalogue's columns filled from
differentially private one-way marginals (OpenDP, through
``export_review.dp_mechanisms``), never from rows of the data. The provider
sets a per-dataset preview budget (ε, δ); each generation is charged to it
before any noisy value is computed, and the released marginals and the
sample are stored so that downloads spend nothing.

- :mod:`sandbox.preview.models` — the budget, its charges, the stored previews.
- :mod:`sandbox.preview.ledger` — the preview budget ledger.
- :mod:`sandbox.preview.marginals` — which column is released how, and the
  noisy marginals themselves.
- :mod:`sandbox.preview.synthesis` — sampling rows from released marginals.
- :mod:`sandbox.preview.files` — the labelled files people download (CSV,
  bilingual README, zip).
- :mod:`sandbox.preview.service` — the operations the API and the CLI call.
"""
