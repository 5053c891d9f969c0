"""Helpers of the ``trajfusion train`` stage: dataset encoding, data-interval checkpoints, launch."""
