"""LoRA students: merged == unmerged, the PiSA-SR blend rule, trainability."""

import torch

from shared import lora

from conftest import tiny_student


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 8, 8, generator=g)


def test_merged_and_unmerged_outputs_agree():
    s = tiny_student()
    y, cond = _inputs()
    with torch.no_grad():
        unmerged = s.evaluate(y, cond, ["pixel", "detail"])
        s.merge(["pixel", "detail"])
        assert lora.is_merged(s.denoiser.backbone)
        merged = s.evaluate(y, cond, ["pixel", "detail"])
        s.unmerge()
        again = s.evaluate(y, cond, ["pixel", "detail"])
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, unmerged, atol=1e-5, rtol=1e-5)


def test_adapters_change_the_output():
    s = tiny_student()
    y, cond = _inputs()
    with torch.no_grad():
        base = s.evaluate(y, cond, [])
        pix = s.evaluate(y, cond, ["pixel"])
        both = s.evaluate(y, cond, ["pixel", "detail"])
    assert not torch.allclose(base, pix) and not torch.allclose(pix, both)


def test_blend_rule_and_evaluation_counts():
    s = tiny_student()
    y, cond = _inputs()
    with torch.no_grad():
        f_pix = s.evaluate(y, cond, ["pixel"])
        f_both = s.evaluate(y, cond, ["pixel", "detail"])
        out_default, n1 = s(y, cond)  # pix = detail = 1: merged, one evaluation
        out_pix_only, n2 = s(y, cond, pix=1.0, detail=0.0)
        assert s._merged == ("pixel",)  # the pixel adapter alone is folded in too: bare-backbone speed
        out_mix, n3 = s(y, cond, pix=0.9, detail=0.5)
    torch.testing.assert_close(out_default, f_both, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_pix_only, f_pix, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_mix, 0.9 * f_pix + 0.5 * (f_both - f_pix), atol=1e-5, rtol=1e-5)
    assert (n1, n2, n3) == (1, 1, 2)


def test_set_trainable_only_touches_chosen_adapter():
    s = tiny_student()
    params = lora.set_trainable(s.denoiser.backbone, ["detail"])
    names = [n for n, p in s.denoiser.backbone.named_parameters() if p.requires_grad]
    assert params and all(".detail." in n for n in names)
    assert len(names) == len(params)


def test_zero_initialised_adapter_is_identity():
    from conftest import tiny_denoiser
    from shared.student import OneStepStudent

    teacher = tiny_denoiser()
    s = OneStepStudent.from_teacher(teacher, [lora.AdapterSpec("pixel", 4, 4)])
    y, cond = _inputs()
    t = torch.full((2,), 3)
    with torch.no_grad():
        torch.testing.assert_close(s.evaluate(y, cond, ["pixel"]), teacher(y, t, y, cond))
