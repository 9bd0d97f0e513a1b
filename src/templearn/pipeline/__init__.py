"""`templearn run`: a whole Template Learning experiment from one params file, on one machine.

`experiment` reads and checks the params file, `graph` turns it into tasks (each the same
`templearn <stage>` command line a Nextflow process runs), `runner` executes them in
parallel with resume.
"""
