//! Greedy decoding of many prompts at once, continuously batched: a sequence joins the
//! batch as soon as another leaves it, so a long reply never holds up the short ones.

use std::collections::BTreeSet;
use std::sync::mpsc;

use candle_core::Tensor;

use crate::error::{LocalError, Result};
use crate::model::{Llama, PREFILL_CHUNK, SequenceState};
use crate::verdict::{VerdictCandidates, VerdictMass};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model produced one of its end tokens.
    EndToken,
    /// `max_new_tokens` were generated.
    MaxTokens,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated ids, without the end token.
    pub tokens: Vec<u32>,
    pub stop: Stop,
    /// For each of `tokens`, the mass the model put there on starting FAIL and on starting
    /// PASS; empty when the engine has no verdict candidates.
    pub verdict_masses: Vec<VerdictMass>,
}

/// A prompt for the model thread, and where to send its generation.
pub struct Request {
    pub prompt: Vec<u32>,
    pub max_new_tokens: usize,
    pub reply: tokio::sync::oneshot::Sender<Result<Generation, String>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("prompt_tokens", &self.prompt.len())
            .field("max_new_tokens", &self.max_new_tokens)
            .finish_non_exhaustive()
    }
}

pub struct Engine {
    model: Llama,
    stop_tokens: BTreeSet<u32>,
    max_batch: usize,
    /// The candidates, and their ids on the model's device for gathering logits.
    verdict: Option<(VerdictCandidates, Tensor)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.model)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<Generation, String>>;

struct Active {
    prompt: Vec<u32>,
    fed: usize,
    generated: Vec<u32>,
    masses: Vec<VerdictMass>,
    max_new_tokens: usize,
    state: SequenceState,
    stop: Option<Stop>,
    reply: Reply,
}

impl Active {
    fn next_input(&self) -> &[u32] {
        if self.fed < self.prompt.len() {
            let end = (self.fed + PREFILL_CHUNK).min(self.prompt.len());
            &self.prompt[self.fed..end]
        } else {
            &self.generated[self.generated.len() - 1..]
        }
    }
}

impl Engine {
    pub fn new(model: Llama, stop_tokens: BTreeSet<u32>, max_batch: usize) -> Engine {
        Engine {
            model,
            stop_tokens,
            max_batch: max_batch.max(1),
            verdict: None,
        }
    }

    /// Keeps, at every generated position, the mass on `candidates` (see
    /// `Generation::verdict_masses`).
    /// Without candidates (a vocabulary with no token that starts either word) nothing is
    /// kept.
    pub fn with_verdict_candidates(mut self, candidates: VerdictCandidates) -> Result<Engine> {
        if candidates.ids().is_empty() {
            self.verdict = None;
            return Ok(self);
        }
        let ids = Tensor::new(candidates.ids(), self.model.device())?;
        self.verdict = Some((candidates, ids));
        Ok(self)
    }

    pub fn verdict_candidates(&self) -> Option<&VerdictCandidates> {
        self.verdict.as_ref().map(|(candidates, _)| candidates)
    }

    pub fn set_max_batch(&mut self, max_batch: usize) {
        self.max_batch = max_batch.max(1);
    }

    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// Generates for every prompt, at most `max_batch` at a time, on this thread: `serve`
    /// over a queue that holds them all. The first failed prompt's error is returned.
    pub fn generate(&self, prompts: &[Vec<u32>], max_new_tokens: usize) -> Result<Vec<Generation>> {
        let (requests, queue) = mpsc::channel();
        let mut answers = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let request = Request {
                prompt: prompt.clone(),
                max_new_tokens,
                reply,
            };
            // Cannot fail: `queue` is alive. Were it not, the answer below reports it.
            let _ = requests.send(request);
            answers.push(answer);
        }
        drop(requests);
        self.serve(queue);
        answers
            .into_iter()
            .map(|mut answer| {
                // `serve` has answered every request by now (or dropped it, on a panic).
                answer
                    .try_recv()
                    .map_err(|_| LocalError::Request("the model thread sent no reply".into()))?
                    .map_err(LocalError::Request)
            })
            .collect()
    }

    /// Serves requests until every sender is gone. Errors go back to the requests they hit;
    /// the thread lives on for the next ones.
    pub fn serve(&self, requests: mpsc::Receiver<Request>) {
        let mut active: Vec<Active> = Vec::new();
        let mut open = true;
        loop {
            if active.is_empty() {
                if !open {
                    return;
                }
                match requests.recv() {
                    Ok(request) => self.admit(request, &mut active),
                    Err(_) => return,
                }
            }
            while open && active.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(request) => self.admit(request, &mut active),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => open = false,
                }
            }
            // Nobody waits for a cancelled request (its run stopped, or it timed out): its
            // slot goes to the next prompt instead of running on to `max_new_tokens`.
            active.retain(|a| !a.reply.is_closed());
            if active.is_empty() {
                continue;
            }
            if let Err(e) = self.step_guarded(&mut active) {
                if active.len() == 1 {
                    for a in active.drain(..) {
                        let _ = a.reply.send(Err(e.clone()));
                    }
                    continue;
                }
                // One sequence may be the cause (a long prompt that runs a GPU out of
                // memory, say): step each alone, so only those that fail alone are lost.
                let mut kept = Vec::with_capacity(active.len());
                for mut a in active.drain(..) {
                    match self.step_guarded(std::slice::from_mut(&mut a)) {
                        Ok(()) => kept.push(a),
                        Err(e) => {
                            let _ = a.reply.send(Err(e));
                        }
                    }
                }
                active = kept;
            }
            for done in take_finished(&mut active) {
                let stop = done.stop.unwrap_or(Stop::MaxTokens);
                let generation = Generation {
                    tokens: done.generated,
                    stop,
                    verdict_masses: done.masses,
                };
                let _ = done.reply.send(Ok(generation));
            }
        }
    }

    fn admit(&self, request: Request, active: &mut Vec<Active>) {
        let Request {
            prompt,
            max_new_tokens,
            reply,
        } = request;
        if let Err(e) = self.check(&prompt, max_new_tokens) {
            let _ = reply.send(Err(e));
            return;
        }
        match self.model.new_sequence(prompt.len() + max_new_tokens) {
            Ok(state) => active.push(Active {
                prompt,
                fed: 0,
                generated: Vec::new(),
                masses: Vec::new(),
                max_new_tokens,
                state,
                stop: (max_new_tokens == 0).then_some(Stop::MaxTokens),
                reply,
            }),
            Err(e) => {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }

    fn check(&self, prompt: &[u32], max_new_tokens: usize) -> Result<(), String> {
        let context = self.model.dims().context_length;
        if prompt.is_empty() {
            return Err("empty prompt".to_string());
        }
        if prompt.len() + max_new_tokens > context {
            return Err(format!(
                "{} prompt tokens + {max_new_tokens} new tokens exceed the context of {context}",
                prompt.len()
            ));
        }
        Ok(())
    }

    /// `step`, with a panic inside candle turned into an error: a dead model thread would
    /// leave every later example retrying a model that is gone. A failed step leaves every
    /// sequence where it was, so it can be stepped again.
    fn step_guarded(&self, active: &mut [Active]) -> Result<(), String> {
        let before: Vec<usize> = active.iter().map(|a| a.state.len()).collect();
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.step(active).map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|panic| Err(format!("the model panicked: {}", panic_text(&panic))));
        if stepped.is_err() {
            for (a, len) in active.iter_mut().zip(before) {
                a.state.rewind(len);
            }
        }
        stepped
    }

    /// One forward pass over every active sequence.
    fn step(&self, active: &mut [Active]) -> Result<()> {
        let inputs: Vec<Vec<u32>> = active.iter().map(|a| a.next_input().to_vec()).collect();
        let logits = {
            let mut steps: Vec<(&[u32], &mut SequenceState)> = inputs
                .iter()
                .zip(active.iter_mut())
                .map(|(input, a)| (input.as_slice(), &mut a.state))
                .collect();
            self.model.forward(&mut steps)?
        };
        let next = Llama::argmax(&logits)?;
        // Only the candidates' logits leave the device: a few dozen per sequence.
        let masses: Vec<Option<VerdictMass>> = match &self.verdict {
            Some((candidates, ids)) => logits
                .index_select(ids, 1)?
                .to_vec2::<f32>()?
                .iter()
                .map(|row| Some(candidates.mass(row)))
                .collect(),
            None => vec![None; active.len()],
        };
        for (((a, input), token), mass) in active.iter_mut().zip(&inputs).zip(next).zip(masses) {
            let prompting = a.fed < a.prompt.len();
            if prompting {
                a.fed += input.len();
                if a.fed < a.prompt.len() {
                    continue;
                }
            }
            if self.stop_tokens.contains(&token) {
                a.stop = Some(Stop::EndToken);
                continue;
            }
            a.generated.push(token);
            a.masses.extend(mass);
            if a.generated.len() >= a.max_new_tokens {
                a.stop = Some(Stop::MaxTokens);
            }
        }
        Ok(())
    }
}

fn take_finished(active: &mut Vec<Active>) -> Vec<Active> {
    let mut done = Vec::new();
    let mut i = 0;
    while i < active.len() {
        if active[i].stop.is_some() {
            done.push(active.remove(i));
        } else {
            i += 1;
        }
    }
    done
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message")
}
