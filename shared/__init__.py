"""The shared diffusion core: residual-shift processes, samplers, denoiser, training, checkpoints."""
