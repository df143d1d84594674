//! A GGUF file's header: metadata and tensor index, read once and shared by the model, the
//! tokenizer and the chat template.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{LocalError, Result};

pub struct Gguf {
    path: PathBuf,
    content: Content,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .field("tensors", &self.content.tensor_infos.len())
            .finish_non_exhaustive()
    }
}

impl Gguf {
    pub fn open(path: &Path) -> Result<Gguf> {
        let mut reader = open(path)?;
        let content = Content::read(&mut reader).map_err(|source| LocalError::Gguf {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        Ok(Gguf {
            path: path.to_path_buf(),
            content,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    pub(crate) fn reader(&self) -> Result<BufReader<File>> {
        open(&self.path)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| self.bad(key, "is missing"))
    }

    fn bad(&self, key: &str, problem: &str) -> LocalError {
        LocalError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            problem: problem.to_string(),
        }
    }

    pub fn string(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            _ => Err(self.bad(key, "is not a string")),
        }
    }

    /// Any integer type: writers differ in which width they use for counts and ids.
    pub fn usize(&self, key: &str) -> Result<usize> {
        as_u64(self.require(key)?)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.bad(key, "is not a non-negative integer"))
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        match self.require(key)? {
            Value::F32(v) => Ok(f64::from(*v)),
            Value::F64(v) => Ok(*v),
            _ => Err(self.bad(key, "is not a float")),
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn array(&self, key: &str) -> Result<&[Value]> {
        match self.require(key)? {
            Value::Array(items) => Ok(items),
            _ => Err(self.bad(key, "is not an array")),
        }
    }

    pub fn array_len(&self, key: &str) -> Result<usize> {
        self.array(key).map(<[Value]>::len)
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.array(key)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.bad(key, "holds a value that is not a string")),
            })
            .collect()
    }

    pub fn integers(&self, key: &str) -> Result<Vec<u64>> {
        self.array(key)?
            .iter()
            .map(|v| as_u64(v).ok_or_else(|| self.bad(key, "holds a non-integer")))
            .collect()
    }

    /// A token id stored under `key`, if present and an integer.
    pub fn token_id(&self, key: &str) -> Option<u32> {
        self.get(key)
            .and_then(as_u64)
            .and_then(|v| u32::try_from(v).ok())
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(u64::from(x)),
        Value::U16(x) => Some(u64::from(x)),
        Value::U32(x) => Some(u64::from(x)),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| LocalError::Io {
            path: path.to_path_buf(),
            source,
        })
}
