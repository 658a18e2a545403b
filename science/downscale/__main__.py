from shared.cli import run_program

from .cli import main

run_program(main)
