"""Learning from Galaxy Zoo vote counts: a vote head and the Dirichlet-multinomial likelihood.

Walmsley et al. 2022 (Galaxy Zoo DECaLS, MNRAS 509, 3966), section 4: for each question
the network predicts Dirichlet concentrations alpha over its answers, and the k_j votes of
the N volunteers who answered are scored by the Dirichlet-multinomial

    log p(k | N, alpha) = log G(N + 1) + log G(A) - log G(N + A)
                          + sum_j [log G(k_j + alpha_j) - log G(k_j + 1) - log G(alpha_j)],

with A = sum_j alpha_j and G the gamma function, written here from that formula. The
likelihood knows how many volunteers answered: a question nobody answered (N = 0) gives
log p = 0 and teaches nothing, and a galaxy with 40 votes constrains alpha (and so the
network) far more than one with 5. As in the paper, alpha = 1 + 99 sigmoid(output) keeps
each concentration in (1, 100).

The head is a linear layer on the pooled backbone features, read by a forward hook on the
10-class head's input: the classifier itself, its state dict, and so the exported TFLite
file and its output contract (10 Galaxy10 probabilities), are unchanged.
"""

from __future__ import annotations

import torch

from ml.votes import ANSWER_SLICES, NUM_ANSWERS

ALPHA_MIN, ALPHA_RANGE = 1.0, 99.0


def concentrations(outputs: torch.Tensor) -> torch.Tensor:
    """Dirichlet concentrations in (1, 100) from the vote head's raw outputs."""
    return ALPHA_MIN + ALPHA_RANGE * torch.sigmoid(outputs)


def dirichlet_multinomial_log_likelihood(counts: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """log p(counts | N = counts.sum(-1), alpha) over the last dimension (one question's answers)."""
    counts = counts.to(alpha.dtype)
    total = counts.sum(dim=-1)
    alpha_sum = alpha.sum(dim=-1)
    return (
        torch.lgamma(total + 1.0)
        + torch.lgamma(alpha_sum)
        - torch.lgamma(total + alpha_sum)
        + (torch.lgamma(counts + alpha) - torch.lgamma(counts + 1.0) - torch.lgamma(alpha)).sum(dim=-1)
    )


def vote_nll(outputs: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of every question's votes, summed over questions, per galaxy.

    ``outputs`` and ``counts`` are (B, NUM_ANSWERS) in ``ml.votes.ANSWER_COLUMNS`` order.
    Questions are independent given the image (the paper's approximation), so their
    log-likelihoods add.
    """
    alpha = concentrations(outputs)
    total = torch.zeros(len(outputs), dtype=outputs.dtype, device=outputs.device)
    for part in ANSWER_SLICES.values():
        total = total - dirichlet_multinomial_log_likelihood(counts[:, part], alpha[:, part])
    return total


def expected_fractions(outputs: torch.Tensor) -> torch.Tensor:
    """The predicted vote fraction of each answer within its question (the Dirichlet mean)."""
    alpha = concentrations(outputs)
    return torch.cat(
        [alpha[:, part] / alpha[:, part].sum(dim=1, keepdim=True) for part in ANSWER_SLICES.values()], dim=1
    )


class VoteHead(torch.nn.Module):
    """One output per Galaxy Zoo DECaLS answer, on the classifier's pooled features.

    ``attach`` registers a forward hook on the classifier's final linear layer, so every
    forward pass of the classifier leaves its input features in ``features``.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, NUM_ANSWERS)
        self.features: torch.Tensor | None = None

    def attach(self, fc: torch.nn.Linear) -> torch.utils.hooks.RemovableHandle:
        def keep(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
            self.features = inputs[0]

        return fc.register_forward_hook(keep)

    def forward(self, features: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features if features is None else features
        if features is None:
            raise RuntimeError("the vote head has seen no classifier forward pass")
        return self.linear(features)
