"""The gates recomputed from a fused layer's weights reproduce that layer exactly, layer by layer and direction by direction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lstm_doctor.probes.gates import recompute, trace_model

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
CONFIGS = [  # (cell, layers, bidirectional, extra kwargs)
    ("lstm", 1, False, {}),
    ("lstm", 3, True, {}),
    ("lstm", 2, False, {"proj_size": 3}),
    ("gru", 1, False, {}),
    ("gru", 3, True, {}),
    ("rnn", 2, True, {}),
    ("rnn", 2, False, {"nonlinearity": "relu"}),
]


def _fused(cell: str, layers: int, bidirectional: bool, kwargs: dict, *, batch_first: bool = True, bias: bool = True) -> nn.RNNBase:
    torch.manual_seed(7)
    return CELLS[cell](5, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias, **kwargs).double()


def _prefix(rnn: nn.RNNBase, depth: int) -> nn.RNNBase:
    """A fused layer holding the first ``depth`` layers of ``rnn`` with the same weights: its output is layer depth-1's."""
    kwargs = {"proj_size": rnn.proj_size} if getattr(rnn, "proj_size", 0) else {}
    if rnn.mode.startswith("RNN"):
        kwargs["nonlinearity"] = rnn.nonlinearity
    part = type(rnn)(rnn.input_size, rnn.hidden_size, num_layers=depth, bidirectional=rnn.bidirectional,
                     batch_first=rnn.batch_first, bias=rnn.bias, **kwargs).double()
    part.load_state_dict({k: v for k, v in rnn.state_dict().items() if int(k.split("_l")[1].split("_")[0]) < depth})
    return part


@pytest.mark.parametrize("cell,layers,bidirectional,kwargs", CONFIGS)
def test_every_layer_and_direction_matches_the_fused_layer(cell, layers, bidirectional, kwargs):
    rnn = _fused(cell, layers, bidirectional, kwargs)
    x = torch.randn(4, 9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2.0
    traces = recompute(rnn, x)
    directions = 2 if bidirectional else 1
    assert [t.name for t in traces] == [f"layer{l}{s}" for l in range(layers) for s in ["", "_reverse"][:directions]]
    with torch.no_grad():
        for depth in range(1, layers + 1):
            out, state = _prefix(rnn, depth)(x)
            mine = torch.cat([t.h for t in traces[(depth - 1) * directions : depth * directions]], dim=-1)
            torch.testing.assert_close(mine, out, rtol=0, atol=1e-10)
        # The final states of every layer and direction (for LSTM: h and c).
        h_n, c_n = state if isinstance(state, tuple) else (state, None)
        for k, t in enumerate(traces):
            end = t.h[:, 0] if t.name.endswith("_reverse") else t.h[:, -1]
            torch.testing.assert_close(end, h_n[k], rtol=0, atol=1e-10)
            if c_n is not None:
                cend = t.c[:, 0] if t.name.endswith("_reverse") else t.c[:, -1]
                torch.testing.assert_close(cend, c_n[k], rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_time_major_without_bias_and_given_initial_state(cell):
    rnn = _fused(cell, 2, True, {}, batch_first=False, bias=False).float()
    x = torch.randn(7, 3, 5)  # (steps, batch, features)
    h0 = torch.randn(4, 3, 6)
    hx = (h0, torch.randn(4, 3, 6)) if cell == "lstm" else h0
    with torch.no_grad():
        out, _ = rnn(x, hx)
    traces = recompute(rnn, x, hx)
    mine = torch.cat([t.h for t in traces[-2:]], dim=-1).transpose(0, 1)
    torch.testing.assert_close(mine, out, rtol=0, atol=1e-5)


def test_gates_are_the_activations_the_cell_uses():
    """The recomputed LSTM gates rebuild the cell state by c_t = f*c_(t-1) + i*g."""
    rnn = _fused("lstm", 1, False, {})
    with torch.no_grad():
        traces = recompute(rnn, torch.randn(2, 6, 5, dtype=torch.float64))
    g, c = traces[0].gates, traces[0].c
    rebuilt = g["forget"][:, 1:] * c[:, :-1] + g["input"][:, 1:] * g["cell"][:, 1:]
    torch.testing.assert_close(rebuilt, c[:, 1:])
    for name in ("input", "forget", "output"):
        assert 0 < float(g[name].min()) and float(g[name].max()) < 1


def test_trace_model_finds_the_inputs_of_nested_recurrent_modules():
    class TwoStage(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(5, 4)
            self.encoder = nn.GRU(4, 6, batch_first=True)
            self.decoder = nn.LSTM(6, 3, batch_first=True, num_layers=2)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            h, _ = self.encoder(self.drop(self.proj(x)))
            out, _ = self.decoder(h)
            return out[:, -1]

    model = TwoStage().train()
    x = torch.randn(3, 8, 5)
    traced = trace_model(model, x, None)
    assert set(traced) == {"encoder", "decoder"}
    assert all(m.training for m in model.modules())  # every module's mode restored
    model.eval()  # the probe pass ran without dropout
    with torch.no_grad():
        torch.testing.assert_close(traced["decoder"][-1].h[:, -1], model(x), rtol=0, atol=1e-5)
