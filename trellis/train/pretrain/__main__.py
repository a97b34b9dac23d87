"""Entry of each launched training process: ``python -m trellis.train.pretrain OUT_DIR/launch.json``.

``launch_command`` starts one of these per GPU. The work is in ``launch._main``, imported here
rather than defined here: run as ``__main__``, a module's classes would get ``__main__`` as their
module, and LitGPT records the data module's class path in hyperparameters.yaml.
"""

import sys

from trellis.train.pretrain.launch import _main

_main(sys.argv[1:])
