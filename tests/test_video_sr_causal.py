"""Causal convolutions: a clip run whole equals the same clip run frame by frame with cached state."""

import torch

from pipelines.video_sr.causal import CausalBlock, CausalConv3d


def test_streaming_equals_batch_and_nothing_looks_ahead():
    torch.manual_seed(0)
    conv = CausalConv3d(3, 5, kernel=3, time_kernel=3)
    block = CausalBlock(5, time_kernel=2)
    clip = torch.randn(1, 3, 9, 12, 16)
    with torch.no_grad():
        whole, _ = block(conv(clip)[0])
        state_c, state_b, frames = None, None, []
        for t in range(clip.shape[2]):
            y, state_c = conv(clip[:, :, t : t + 1], state_c)
            y, state_b = block(y, state_b)
            frames.append(y)
        streamed = torch.cat(frames, dim=2)
        assert torch.allclose(whole, streamed, atol=1e-6)
        changed = clip.clone()
        changed[:, :, 6:] += 1.0  # a change at frame 6 leaves frames 0..5 untouched
        later, _ = block(conv(changed)[0])
        assert torch.equal(later[:, :, :6], whole[:, :, :6]) and not torch.allclose(later[:, :, 6], whole[:, :, 6])
