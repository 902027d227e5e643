"""Supervision duties beyond review: violations and their measures (Shanghai Art.28, 36, 43),
tip-offs and reported security problems (Shanghai Art.27; Wuxi Art.17), data-quality
rectification tasks (Wuxi Art.13) and requests for data not yet opened (Shanghai Art.10;
Wuxi Art.9).

Each kind of case moves through states held as data (:mod:`sandbox.oversight.workflow`);
every move is checked there, answered where the regulation asks for an answer, and
recorded in the audit record in the same transaction.
"""
