"""The training layer: data generation and training of the models our codecs ship.

``nrdoq_data`` (encode pictures with RDOQ and record every quantized block),
``nrdoq_train`` (train and export the neural quantizers), ``lic_train`` (train and export
the learned intra codec). It sits above ``pipeline`` (it reads pictures with its sources
and measures with its metrics); the codecs it trains never import it, so inference needs
neither the trainers nor, where a model does not need it, torch.
"""
