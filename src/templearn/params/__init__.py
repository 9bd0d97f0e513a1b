"""Params files shipped with templearn: `demo.yaml` (the demo), `ribosome.yaml` and
`apoferritin.yaml` (the tested recipes), `ablation-*.yaml` (the paper's Fig. 4 ablations,
layered on a recipe), `with-match.yaml` (template matching as the baseline, a layer for
any recipe) and `test.yaml` (a tiny run for tests and CI)."""
