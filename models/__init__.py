"""Training, evaluation and export of the Baby Monitor cry/laughter model (not shipped by HACS)."""
