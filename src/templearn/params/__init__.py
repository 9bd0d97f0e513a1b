"""Params files shipped with templearn: `demo.yaml` (the demo), `ribosome.yaml` and
`apoferritin.yaml` (the tested recipes), `ablation-*.yaml` (the paper's Fig. 4 ablations,
layered on a recipe) and `test.yaml` (a tiny run for tests and CI)."""
