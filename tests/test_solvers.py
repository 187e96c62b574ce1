import torch

from engine.solvers import cfg_combine, euler_step, noise_prediction, noised, sde_step, x0_prediction


def _batch(seed=0, b=5, t=16, c=4):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(b, t, c, generator=g)
    eps = torch.randn(b, t, c, generator=g)
    sigma = torch.rand(b, generator=g) * 0.9 + 0.05
    return x0, eps, sigma


def test_predictions_recover_the_true_sample_and_noise():
    x0, eps, sigma = _batch()
    x = noised(x0, eps, sigma)
    v = eps - x0  # the exact flow velocity
    torch.testing.assert_close(x0_prediction(x, v, sigma), x0, atol=1e-5, rtol=0)
    torch.testing.assert_close(noise_prediction(x, v, sigma), eps, atol=1e-5, rtol=0)


def test_euler_on_the_exact_velocity_walks_the_straight_path():
    x0, eps, sigma = _batch(1)
    sigma_next = sigma * 0.4
    x = noised(x0, eps, sigma)
    out = euler_step(x, eps - x0, sigma, sigma_next)
    torch.testing.assert_close(out, noised(x0, eps, sigma_next), atol=1e-5, rtol=0)
    final = euler_step(x, eps - x0, sigma, torch.zeros_like(sigma))
    torch.testing.assert_close(final, x0, atol=1e-5, rtol=0)


def test_sde_without_noise_or_blend_is_the_euler_step():
    x0_true, eps_true, sigma = _batch(2)
    x = noised(x0_true, eps_true, sigma)
    v = torch.randn_like(x)  # any model output
    sigma_next = sigma * 0.5
    ode = euler_step(x, v, sigma, sigma_next)
    sde = sde_step(x0_prediction(x, v, sigma), noise_prediction(x, v, sigma), torch.randn_like(x),
                   sigma_next, eta=torch.tensor(0.0))
    torch.testing.assert_close(sde, ode, atol=1e-5, rtol=0)


def test_source_blend_is_per_frame():
    x0, eps, sigma = _batch(3, b=2, t=10)
    source = torch.randn_like(x0)
    blend = torch.zeros(1, 10, 1)
    blend[:, :4] = 1.0  # keep the source on the first four frames
    out = sde_step(x0, eps, torch.randn_like(x0), torch.zeros(2), eta=torch.tensor(1.0), source=source, blend=blend)
    assert torch.equal(out[:, :4], source[:, :4])
    assert torch.equal(out[:, 4:], x0[:, 4:])


def test_noise_injection_keeps_unit_variance():
    g = torch.Generator().manual_seed(4)
    eps, fresh = torch.randn(2, 20000, 1, generator=g), torch.randn(2, 20000, 1, generator=g)
    x0 = torch.zeros_like(eps)
    out = sde_step(x0, eps, fresh, torch.ones(2), eta=torch.tensor(0.6))
    assert abs(out.std().item() - 1.0) < 0.02


def test_rows_are_independent_of_their_batch_position():
    x0, eps, sigma = _batch(5, b=7)
    v = torch.randn_like(x0)
    sigma_next = sigma * 0.3
    whole = euler_step(noised(x0, eps, sigma), v, sigma, sigma_next)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    permuted = euler_step(noised(x0[perm], eps[perm], sigma[perm]), v[perm], sigma[perm], sigma_next[perm])
    assert torch.equal(permuted, whole[perm])


def test_cfg_combine():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    assert torch.equal(cfg_combine(a, b, 1.0), b + (a - b))
    torch.testing.assert_close(cfg_combine(a, b, 3.0), b + 3.0 * (a - b))
