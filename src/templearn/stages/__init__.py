"""The stage layer: for each stage a Params class and `run(params, inputs, out_dir)`.

Modules here import only the standard library and `templearn.stages.base` at import time;
each stage imports its heavy dependencies when it runs.
"""
