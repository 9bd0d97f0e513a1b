"""Params files shipped with templearn: `demo.yaml` (the demo), `ribosome.yaml` and
`apoferritin.yaml` (the tested recipes at 16 Å), `nucleosome.yaml` (the paper's small
target at 8 Å: six models as one class), `ablation-*.yaml` (the paper's Fig. 4 ablations,
layered on a recipe), `with-match.yaml` (template matching as the baseline, a layer for
any recipe) and `test.yaml` (a tiny run for tests and CI)."""
