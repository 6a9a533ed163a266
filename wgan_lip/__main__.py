"""``python -m wgan_lip`` is the ``wgan-lip`` command (handy under torchrun or srun)."""

import sys

from .cli import main

sys.exit(main())
