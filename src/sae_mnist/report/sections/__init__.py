"""The report's sections, one module each, in the order report.md has them: overview (title and what the
numbers come from), verdict, thresholds (every threshold's curve, each grid point labelled against the margin),
trained (what was trained and where each setting lies), decisions (each choice and the split it was made on),
learning_rates (each penalty's rate from lr_select), frontiers (with reference, against SAELens), studies (the
recipe ablation, the wide code), robustness, kl_terms (KL on equal terms), defaults (every variant at its default,
and the appendix), training (convergence and cost), probes, features (features, reconstructions, activations), cite
(metric definitions and how to cite). Each takes the report's Inputs and analysis results and returns Markdown; a
section with figures saves them in a function of its own."""
