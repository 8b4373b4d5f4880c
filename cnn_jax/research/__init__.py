"""The course's comparisons: Nielsen's chapter 6 table and the "why CNNs" ablation."""
