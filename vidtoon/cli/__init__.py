"""The `vidtoon` command, the only part of vidtoon that prints or exits.

    vidtoon cartoonize in.mp4 -o out.mp4 [--backend auto|classic|pix2pix] ...   cartoonize.py
    vidtoon image in.png -o out.png [--frame N] ...   (same look options)       cartoonize.py
    vidtoon info in.mp4                                                         info.py
    vidtoon batch clips/ -o cartoons/ [--recursive] [--jobs N] [--ray [ADDRESS]] ...  batch.py
    vidtoon metrics in.mp4 out.mp4 [--json] [--plot plot.png] [--sheet sheet.png]     metrics.py
    vidtoon webcam [--device 0 | --source FILE_OR_URL] [--record out.mp4] ...        webcam.py
    vidtoon serve [--host 127.0.0.1] [--port 7860] [--open] [--batch-dir DIR]        serve.py

main.py builds the parser and maps errors to exit codes (status.py); the
options that say how frames become cartoons come from the settings classes
(options.py), so every backend's options appear without being listed here.
"""

from .main import build_parser, main
from .options import recipe_from_args
from .status import ExitStatus

__all__ = ["ExitStatus", "build_parser", "main", "recipe_from_args"]
