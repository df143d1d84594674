//! Greedy decoding of many prompts at once, continuously batched: a sequence joins the
//! batch as soon as another leaves it, so a long reply never holds up the short ones.

use std::collections::BTreeSet;
use std::sync::mpsc;

use crate::error::{LocalError, Result};
use crate::model::{Llama, PREFILL_CHUNK, SequenceState};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model produced one of its end tokens.
    EndToken,
    /// `max_new_tokens` were generated.
    MaxTokens,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Generated ids, without the end token.
    pub tokens: Vec<u32>,
    pub stop: Stop,
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
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.model)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

struct Active<T> {
    prompt: Vec<u32>,
    fed: usize,
    generated: Vec<u32>,
    max_new_tokens: usize,
    state: SequenceState,
    stop: Option<Stop>,
    owner: T,
}

impl<T> Active<T> {
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
        }
    }

    pub fn set_max_batch(&mut self, max_batch: usize) {
        self.max_batch = max_batch.max(1);
    }

    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// Generates for every prompt, at most `max_batch` at a time, in order.
    pub fn generate(&self, prompts: &[Vec<u32>], max_new_tokens: usize) -> Result<Vec<Generation>> {
        let mut results: Vec<Option<Generation>> = vec![None; prompts.len()];
        let mut queue = prompts.iter().enumerate();
        let mut active: Vec<Active<usize>> = Vec::new();
        loop {
            while active.len() < self.max_batch {
                let Some((i, prompt)) = queue.next() else {
                    break;
                };
                self.check(prompt, max_new_tokens)
                    .map_err(LocalError::Request)?;
                let admitted = self.admit(prompt.clone(), max_new_tokens, i);
                active.push(admitted.map_err(|(e, _)| e)?);
            }
            if active.is_empty() {
                break;
            }
            self.step(&mut active)?;
            for done in take_finished(&mut active) {
                let (i, generation) = finish(done);
                results[i] = Some(generation);
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Serves requests until every sender is gone. Errors go back to the requests they hit;
    /// the thread lives on for the next ones.
    pub fn serve(&self, requests: mpsc::Receiver<Request>) {
        type Reply = tokio::sync::oneshot::Sender<Result<Generation, String>>;
        let mut active: Vec<Active<Reply>> = Vec::new();
        let mut open = true;
        loop {
            if active.is_empty() {
                if !open {
                    return;
                }
                match requests.recv() {
                    Ok(request) => self.admit_request(request, &mut active),
                    Err(_) => return,
                }
            }
            while open && active.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(request) => self.admit_request(request, &mut active),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => open = false,
                }
            }
            if active.is_empty() {
                continue;
            }
            // A panic inside candle answers this batch like an error instead of killing the
            // thread, which would leave every later example retrying a model that is gone.
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.step(&mut active).map_err(|e| e.to_string())
            }))
            .unwrap_or_else(|panic| Err(format!("the model panicked: {}", panic_text(&panic))));
            if let Err(e) = stepped {
                for a in active.drain(..) {
                    let _ = a.owner.send(Err(e.clone()));
                }
                continue;
            }
            for done in take_finished(&mut active) {
                let (reply, generation) = finish(done);
                let _ = reply.send(Ok(generation));
            }
        }
    }

    fn admit_request(
        &self,
        request: Request,
        active: &mut Vec<Active<tokio::sync::oneshot::Sender<Result<Generation, String>>>>,
    ) {
        let Request {
            prompt,
            max_new_tokens,
            reply,
        } = request;
        match self.check(&prompt, max_new_tokens) {
            Ok(()) => match self.admit(prompt, max_new_tokens, reply) {
                Ok(a) => active.push(a),
                Err((e, reply)) => {
                    let _ = reply.send(Err(e.to_string()));
                }
            },
            Err(e) => {
                let _ = reply.send(Err(e));
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

    fn admit<T>(&self, prompt: Vec<u32>, max_new_tokens: usize, owner: T) -> AdmitResult<T> {
        let capacity = prompt.len() + max_new_tokens;
        let state = match self.model.new_sequence(capacity) {
            Ok(state) => state,
            Err(e) => return Err((e, owner)),
        };
        Ok(Active {
            prompt,
            fed: 0,
            generated: Vec::new(),
            max_new_tokens,
            state,
            stop: (max_new_tokens == 0).then_some(Stop::MaxTokens),
            owner,
        })
    }

    /// One forward pass over every active sequence.
    fn step<T>(&self, active: &mut [Active<T>]) -> Result<()> {
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
        for ((a, input), token) in active.iter_mut().zip(&inputs).zip(next) {
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
            if a.generated.len() >= a.max_new_tokens {
                a.stop = Some(Stop::MaxTokens);
            }
        }
        Ok(())
    }
}

type AdmitResult<T> = std::result::Result<Active<T>, (LocalError, T)>;

fn take_finished<T>(active: &mut Vec<Active<T>>) -> Vec<Active<T>> {
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

fn finish<T>(a: Active<T>) -> (T, Generation) {
    let stop = a.stop.unwrap_or(Stop::MaxTokens);
    (
        a.owner,
        Generation {
            tokens: a.generated,
            stop,
        },
    )
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message")
}
