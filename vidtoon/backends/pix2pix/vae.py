"""The VAE stages of the pix2pix backend in chunks that fit the GPU's free memory.

The VAE, not the UNet, is where a batch runs out of memory: counted for SD1.5 in fp16 at
512x512, a batch of 16 peaks near 3 GiB in the UNet but near 6 GiB in the VAE decode (5 in
the encode), since its full-resolution layers hold 128-256 channels for every pixel. So:

- on CUDA, a batch goes through the VAE in chunks sized to the free memory
  (torch.cuda.mem_get_info plus what torch's allocator holds unused);
- an out-of-memory in the VAE halves the chunk and redoes only the chunk that failed:
  the batch's finished denoising is kept, and later batches keep the smaller chunk;
- on a CPU (or MPS) the whole batch goes at once: host memory is not the limit there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import BackendUnavailable

# Peak activation elements per pixel of a frame, per channel of the VAE's full-resolution
# width (block_out_channels[0]: 128 in SD1.5), from the count above: 6 x 128 = 768 elements
# (1.5 KiB in fp16) a pixel for the decoder, 5 x 128 for the encoder.
PER_CHANNEL = {"decode": 6, "encode": 5}
MARGIN = 0.8  # of the free memory: the allocator's fragmentation, cuDNN's workspaces


def chunk_size(free: int, frame_bytes: int, frames: int) -> int:
    """Frames per VAE call: as many as fit in MARGIN of `free` bytes, 1 to `frames`."""
    return max(1, min(frames, int(free * MARGIN) // max(1, frame_bytes)))


def frame_bytes(vae: Any, kind: str, height: int, width: int, dtype: Any) -> int:
    """Estimated peak bytes of one height x width frame (pixels) through the VAE's `kind` stage."""
    import torch

    return PER_CHANNEL[kind] * _channels(vae)[0] * height * width * torch.empty((), dtype=dtype).element_size()


def _channels(vae: Any) -> tuple[int, ...]:
    """The VAE's block widths, full resolution first (AutoencoderKL, or AutoencoderTiny's decoder)."""
    config = vae.config
    return tuple(getattr(config, "block_out_channels", None) or config.decoder_block_out_channels)


class VaeChunks:
    """Runs a VAE stage over a batch in memory-sized chunks, retrying smaller on out-of-memory."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.cap: int | None = None  # frames per VAE call after an out-of-memory, for every later batch

    def __call__(self, kind: str, vae: Any, run: Callable[[Any], Any], x: Any) -> Any:
        """run(x[i:j]) for consecutive chunks of x, concatenated. kind "encode": x are
        pictures (N, 3, H, W); "decode": x are latents (N, 4, H/8, W/8)."""
        import torch

        n = len(x)
        scale = 2 ** (len(_channels(vae)) - 1) if kind == "decode" else 1  # latent cells -> pixels
        size = self._size(kind, vae, x, scale)
        done, parts = 0, []
        while done < n:
            step = min(size, n - done)
            try:
                parts.append(run(x[done : done + step]))
                done += step
                continue
            except torch.cuda.OutOfMemoryError:
                if step == 1:
                    height, width = (side * scale for side in x.shape[2:])
                    raise BackendUnavailable(f"out of GPU memory in the VAE {kind} of one {width}x{height} frame; "
                                             f"lower --max-side (or --size)") from None
            # Outside the except block, so the failed chunk's tensors are already freed.
            size = self.cap = max(1, step // 2)
            torch.cuda.empty_cache()
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _size(self, kind: str, vae: Any, x: Any, scale: int) -> int:
        n = len(x) if self.cap is None else min(len(x), self.cap)
        if self.device.type != "cuda":
            return n
        import torch

        free, _ = torch.cuda.mem_get_info(self.device)
        free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        height, width = (side * scale for side in x.shape[2:])
        return chunk_size(free, frame_bytes(vae, kind, height, width, vae.dtype), n)
