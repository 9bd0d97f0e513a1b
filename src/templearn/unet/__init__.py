"""3D U-Net segmentation (DeepFinder architecture) in JAX/Flax NNX.

`model` defines the network (`UNet`, `UNetConfig`, presets, CPU-friendly convolution
paths); `data` draws class-balanced training patches from tomograms and label maps;
`losses` holds the Tversky/Dice and cross-entropy objectives; `train` runs the
jit-compiled Adam training loop with checkpoints; `segment` applies a trained network to
whole tomograms tile by tile and returns class-probability and label maps.
"""
