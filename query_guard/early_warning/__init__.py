"""Early warnings raised from the query log (R12; Shanghai Art.37, Rizhao Art.21)."""
