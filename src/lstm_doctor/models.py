"""The built-in recurrent models: PyTorch's fused LSTM, GRU and RNN with a head."""

from __future__ import annotations

import torch
from torch import nn

from lstm_doctor.config import ModelConfig
from lstm_doctor.errors import InputError

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ACTIVATIONS = {"none": nn.Identity, "sigmoid": nn.Sigmoid, "softmax": lambda: nn.Softmax(dim=-1), "relu": nn.ReLU, "tanh": nn.Tanh}


class RecurrentModel(nn.Module):
    """A recurrent stack, a readout and a linear head.

    ``forward(x, lengths=None)`` takes ``x`` as ``(batch, steps, features)``. With
    ``per_step`` the head is applied at every step ``(batch, steps, outputs)``;
    otherwise the readout picks one vector per sequence ``(batch, outputs)``.

    >>> m = RecurrentModel(n_features=3, n_outputs=1, config=ModelConfig(hidden=8))
    >>> m(torch.zeros(2, 5, 3)).shape
    torch.Size([2, 1])
    """

    def __init__(self, n_features: int, n_outputs: int, config: ModelConfig, per_step: bool = False):
        super().__init__()
        self.config = config
        self.per_step = per_step
        kwargs = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
        self.rnn = CELLS[config.cell](
            input_size=n_features,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            batch_first=True,
            **kwargs,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden * (2 if config.bidirectional else 1), n_outputs)
        self.activation = ACTIVATIONS[config.output_activation]()
        initialize(self, config.init, config.forget_bias)

    def readout(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """One vector per sequence from the recurrent outputs ``(batch, steps, units)``."""
        how = self.config.readout
        if how == "mean":
            if lengths is None:
                return out.mean(dim=1)
            mask = (torch.arange(out.shape[1], device=out.device)[None, :] < lengths[:, None]).unsqueeze(-1)
            return (out * mask).sum(dim=1) / lengths[:, None].clamp(min=1)
        if how == "true-end" and lengths is not None:
            end = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
            last = out.gather(1, end).squeeze(1)
        else:
            last = out[:, -1]
        if not self.rnn.bidirectional:
            return last
        # The backward direction has read the whole sequence at step 0.
        h = self.rnn.hidden_size
        return torch.cat([last[:, :h], out[:, 0, h:]], dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.rnn(x)
        z = out if self.per_step else self.readout(out, lengths)
        return self.activation(self.head(self.dropout(z)))


def initialize(model: RecurrentModel, scheme: str, forget_bias: float | str = "default") -> None:
    """Apply an initialization scheme to the recurrent layer (and the head's weights)."""
    rnn = model.rnn
    gates = GATES[model.config.cell]
    if scheme != "default":
        for name, p in list(rnn.named_parameters()) + [("head_weight", model.head.weight)]:
            blocks = gates if name.startswith("weight") else 1
            with torch.no_grad():
                if name.startswith("bias"):
                    p.zero_()
                elif scheme == "zeros":
                    p.zero_()
                elif scheme.startswith("normal:"):
                    p.normal_(0.0, float(scheme.split(":", 1)[1]))
                elif scheme == "orthogonal" and name.startswith("weight_hh"):
                    _per_gate(p, nn.init.orthogonal_, blocks)
                else:
                    _per_gate(p, nn.init.xavier_uniform_, blocks)
    if forget_bias != "default" and isinstance(rnn, nn.LSTM):
        h = rnn.hidden_size
        with torch.no_grad():
            for name, p in rnn.named_parameters():
                # Gate order i, f, g, o; the two bias vectors add up.
                if name.startswith("bias_ih"):
                    p[h : 2 * h] = float(forget_bias)
                elif name.startswith("bias_hh"):
                    p[h : 2 * h] = 0.0


def _per_gate(weight: torch.Tensor, init, gates: int) -> None:
    """Initialize each gate's block of a stacked weight matrix on its own."""
    block = weight.shape[0] // gates
    for start in range(0, weight.shape[0], block):
        init(weight[start : start + block])


# An examination holds several copies of the weights (gradients, optimizer state,
# a fresh model per trial); past a billion parameters that exceeds a machine's memory.
MAX_PARAMETERS = 10**9


def parameter_count(config: ModelConfig, n_features: int, n_outputs: int) -> int:
    """Parameters of the model ``config`` describes, without building it."""
    gates, h, directions = GATES[config.cell], config.hidden, 2 if config.bidirectional else 1
    count = 0
    for layer in range(config.layers):
        inputs = n_features if layer == 0 else h * directions
        count += directions * gates * h * (inputs + h + 2)  # W_ih, W_hh and two bias vectors
    return count + (h * directions + 1) * n_outputs


def check_size(config: ModelConfig, n_features: int, n_outputs: int) -> None:
    """Refuse a model too large to examine, before any memory is spent on it."""
    count = parameter_count(config, n_features, n_outputs)
    if count > MAX_PARAMETERS:
        raise InputError(
            f"model.hidden {config.hidden} with {config.layers} layer(s) makes a model of {count:,} parameters "
            f"({count * 4 / 1e9:,.0f} GB in float32); lstm-doctor holds several copies of it and examines models "
            f"up to {MAX_PARAMETERS:,} parameters. Use a smaller model.hidden or model.layers."
        )


def build_model(config: ModelConfig, n_features: int, n_outputs: int, per_step: bool = False) -> RecurrentModel:
    return RecurrentModel(n_features, n_outputs, config, per_step)
