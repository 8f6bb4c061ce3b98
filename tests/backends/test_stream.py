"""The live stream batch (backends/pix2pix/stream.py): camera frames at staggered steps, one
UNet call a push over every frame in flight, each frame with its own scheduler copy and
generator. Exact against each frame run alone, and, with latent reuse, against the same
anchors computed frame by frame."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import panning, picture
from finals import Finals
from rounding import agree_within_rounding

from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.latents import start_step, warped_latents
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.backends.pix2pix.similar import SimilarityFilter
from vidtoon.temporal.flow import MotionTracker

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# As in test_reuse_batch.py: other batch shapes sum in another order (~1e-7 relative); a
# wrong timestep, scheduler state, generator or anchor moves the latents by 0.1 and more.
LATENT_ATOL, LATENT_RTOL = 1e-3, 1e-5


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


def pan(n, width=64, height=48):
    draw = panning()
    return np.stack([draw(i, width, height) for i in range(n)])


def streamed(backend, frames):
    """Every frame through the stream, one push each, then the drain: (tags, cartoons)."""
    stream = backend.stream()
    stream.reset()
    done = []
    for i, frame in enumerate(frames):
        done += stream.push(frame, i)
    done += stream.drain()
    return [tag for tag, _ in done], np.stack([cartoon for _, cartoon in done]), stream


def unet_batches(unet):
    """A list that grows by the samples in each UNet call."""
    seen = []
    return seen, unet.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))


@pytest.mark.parametrize("scheduler", ["model", "dpm++", "ddim", "unipc"])
def test_each_frame_comes_out_as_the_backend_makes_it_alone(parts, monkeypatch, scheduler):
    options = Pix2PixSettings(steps=4, scheduler=scheduler)
    sources = pan(7)
    finals = Finals(monkeypatch)
    tags, out, _ = streamed(Pix2PixBackend(parts, options), sources)
    streamed_latents = finals.all()
    finals.seen.clear()
    alone = np.concatenate([Pix2PixBackend(parts, options, batch_size=1)(f[None]) for f in sources])
    assert tags == list(range(7))
    torch.testing.assert_close(streamed_latents, finals.all(), atol=LATENT_ATOL, rtol=LATENT_RTOL)
    agree_within_rounding(out, alone)
    assert np.abs(out[1:].astype(int) - out[:-1]).mean() > 1  # the frames differ: not one picture repeated


def test_one_unet_call_a_push_over_every_frame_in_flight(parts):
    """Frame by frame, 4 steps are 4 UNet calls a frame; streamed, one call a push, of
    up to 4 frames (three guidance branches each), and the cartoon of push t comes out at push t + 3."""
    backend = Pix2PixBackend(parts, Pix2PixSettings(steps=4))
    stream = backend.stream()
    stream.reset()
    seen, hook = unet_batches(parts.unet)
    try:
        outs = [len(stream.push(frame, i)) for i, frame in enumerate(pan(8))]
        drained = len(stream.drain())
    finally:
        hook.remove()
    assert stream.depth == 4
    assert outs == [0, 0, 0, 1, 1, 1, 1, 1] and drained == 3
    assert seen == [3, 6, 9] + [12] * 5 + [9, 6, 3]  # filling, full, draining
    assert stream.calls == 11 and stream.samples == sum(seen)


def reference_with_reuse(parts, options, sources):
    """The stream's anchors worked out frame by frame: frame t starts at step k from the
    newest frame finished before its push (a frame of S - k steps pushed at u is done at
    push u + S - k - 1), else at step 0, and then it and every frame in flight are done at
    its own push; each denoised alone. Returns the final latents."""
    backend = Pix2PixBackend(parts, options, batch_size=1)
    steps, k = options.steps, start_step(options.steps, options.reuse_latents)
    tracker, scheduler = MotionTracker(), backend.scheduler
    scaling = parts.vae.config.scaling_factor
    finals, done_at = [], []
    with torch.inference_mode():
        for t, frame in enumerate(sources):
            own = backend.encode_frames(frame[None])
            finished = [u for u in range(t) if done_at[u] < t]
            scheduler.set_timesteps(steps)
            noise = backend._clip_noise(own.shape[1:])
            motion = tracker.between(sources[max(finished)], frame) if finished else None
            if motion is None or motion.cut:
                latents, start = noise * scheduler.init_noise_sigma, 0
            else:
                latents, start = warped_latents(scheduler, [motion], finals[max(finished)], own * scaling, noise, k), k
            scheduler.set_timesteps(steps)
            finals.append(backend._denoise(own, latents, start))
            done_at = [min(d, t) for d in done_at] if start == 0 else done_at  # run out with it
            done_at.append(t if start == 0 else t + steps - start - 1)
    return torch.cat(finals)


@pytest.mark.parametrize("scheduler", ["model", "dpm++"])
def test_with_reuse_each_frame_starts_from_the_newest_finished_one(parts, scheduler):
    options = Pix2PixSettings(steps=4, scheduler=scheduler, reuse_latents=0.5)
    sources = pan(10)
    sources[6] = picture(40, 64, 48)  # a cut, and a cut back: both start at step 0
    tags, out, stream = streamed(Pix2PixBackend(parts, options), sources)
    assert tags == list(range(10)) and stream.depth == 2
    with torch.inference_mode():  # pictures: frames finish out of order after the cut, and come out in order
        reference = Pix2PixBackend(parts, options).decode_frames(reference_with_reuse(parts, options, sources), 48, 64)
    agree_within_rounding(out, reference)
    plain = np.concatenate([Pix2PixBackend(parts, Pix2PixSettings(steps=4, scheduler=scheduler))(f[None])
                            for f in sources])
    assert np.abs(out[5:].astype(int) - plain[5:]).mean() > 1  # reuse did something


def test_reuse_halves_the_frames_in_flight(parts):
    stream = Pix2PixBackend(parts, Pix2PixSettings(steps=4, reuse_latents=0.5, image_guidance=1.0)).stream()
    stream.reset()
    seen, hook = unet_batches(parts.unet)
    try:
        for frame in pan(12):
            stream.push(frame)
        stream.drain()
    finally:
        hook.remove()
    # frame 0 runs its 4 steps at once (no anchor), the rest 2 steps from the newest done:
    # 2 frames in flight a call (x 2 guidance branches)
    assert seen == [2, 2, 2, 2] + [2] + [4] * 10 + [2] and stream.calls == 4 + 11 + 1


def test_a_new_frame_size_runs_the_frames_in_flight_out_first(parts):
    backend = Pix2PixBackend(parts, Pix2PixSettings(steps=3))
    stream = backend.stream()
    stream.reset()
    small, big = pan(2), pan(2, 80, 56)
    done = stream.push(small[0], "a") + stream.push(small[1], "b") + stream.push(big[0], "c")
    assert [tag for tag, _ in done] == ["a", "b"]
    done += stream.push(big[1], "d") + stream.drain()
    assert [tag for tag, _ in done] == ["a", "b", "c", "d"] and done[2][1].shape == (56, 80, 3)


def test_cross_frame_attention_has_no_stream(parts):
    assert Pix2PixBackend(parts, Pix2PixSettings(steps=2, cross_frame=True)).stream() is None


def test_a_skipped_frame_only_advances_the_stream(parts):
    """Behind the similarity filter a skipped frame does not enter: the frames in flight
    still step and come out, so a still camera shows the last cartoon, finished."""
    backend = SimilarityFilter(Pix2PixBackend(parts, Pix2PixSettings(steps=3)), 0.98)
    stream = backend.stream()
    stream.reset()
    frame = pan(1)[0]
    tags = [tag for i in range(6) for tag, _ in stream.push(frame, i)]
    assert tags == [0] and backend.skipped == 5  # identical frames: the first runs, then skips
    assert not stream.busy and stream.stream.calls == 3  # its 3 steps, then nothing left to run
    moved = pan(2)[1]
    assert stream.push(moved, "moved") == [] and stream.busy


class Feed:
    """The processor's inbox: every frame in order (a real mailbox drops unread ones), then the end."""

    def __init__(self, frames):
        self._items, self.ended = list(frames), False

    def take(self, timeout=None):
        if self._items:
            return self._items.pop(0)
        self.ended = True
        return None


class Collect:
    """The processor's results, all of them."""

    def __init__(self):
        import threading

        self.items, self.error, self.done = [], None, threading.Event()

    def put(self, item):
        self.items.append(item)

    def end(self, error=None):
        self.error = error
        self.done.set()


def processed(cartoonizer, sources):
    """Every frame through the live processor: what it shows, in order."""
    from vidtoon.live.camera import LiveFrame
    from vidtoon.live.processor import Processor

    processor = Processor(Feed([LiveFrame(i, f, float(i)) for i, f in enumerate(sources)]), cartoonizer, "pix2pix")
    processor.results = Collect()
    with processor:
        processor.start()
        assert processor.results.done.wait(120)
    assert processor.results.error is None
    return processor.results.items


def test_the_live_processor_shows_each_cartoon_with_its_own_frame(parts):
    """Live, each cartoon comes back later than its camera frame; it is shown (and, with
    --compare, put beside) that frame, not the newest, and the last ones are run out."""
    from vidtoon.cartoonizer import Cartoonizer

    options = Pix2PixSettings(steps=4, reuse_latents=0.5)
    sources = pan(6)
    shown = processed(Cartoonizer(Pix2PixBackend(parts, options), compare=True), sources)
    assert [item.frame.index for item in shown] == list(range(6))
    for item in shown:
        assert np.array_equal(item.rgb[:, :64], item.frame.rgb)  # the source half is the cartoon's own frame
    _, streamed_out, _ = streamed(Pix2PixBackend(parts, options), sources)
    agree_within_rounding(np.stack([item.rgb[:, 64:] for item in shown]), streamed_out)


def test_out_of_gpu_memory_in_the_stream_is_one_clear_error(parts, monkeypatch):
    from vidtoon.backends.pix2pix import ip2p
    from vidtoon.errors import BackendUnavailable

    stream = Pix2PixBackend(parts, Pix2PixSettings(steps=3)).stream()
    stream.reset()
    stream.push(pan(1)[0])

    def full(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(ip2p, "predict", full)
    with pytest.raises(BackendUnavailable, match=r"out of GPU memory with 2 64x48 frames in flight; lower --max-side"):
        stream.push(pan(2)[1])


def test_the_live_stabiliser_follows_each_cartoon_s_own_frames(parts):
    """--stabilize after the stream: each cartoon is blended along the motion between its
    own source frames, as the stabiliser does it over the same cartoons in one pass."""
    from vidtoon.cartoonizer import Cartoonizer
    from vidtoon.temporal.stabilize import Stabilizer

    options = Pix2PixSettings(steps=3)
    sources = pan(6)
    shown = processed(Cartoonizer(Pix2PixBackend(parts, options), stabilize=True), sources)
    _, cartoons, _ = streamed(Pix2PixBackend(parts, options), sources)
    steadied = Stabilizer()(sources, cartoons)
    agree_within_rounding(np.stack([item.rgb for item in shown]), steadied)
