//! The stdout side of `encore tail`: records buffered and flushed often enough for a live tail,
//! and a reader that went away (`encore tail | head`) ending the tail quietly.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::format::{Format, Human, Record, json_line};
use crate::error::CommandError;

/// Longest a printed record waits in the buffer while more keep coming.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Why the tail stopped before its end.
#[derive(Debug)]
pub enum Halt {
    /// stdout was closed by its reader: not an error.
    ReaderGone,
    Failed(CommandError),
}

impl From<io::Error> for Halt {
    fn from(e: io::Error) -> Halt {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Halt::ReaderGone
        } else {
            Halt::Failed(CommandError::Failed(format!("writing the records: {e}")))
        }
    }
}

impl Halt {
    /// The command's outcome: a reader gone is success.
    pub fn quiet(self) -> Result<(), CommandError> {
        match self {
            Halt::ReaderGone => Ok(()),
            Halt::Failed(e) => Err(e),
        }
    }
}

pub struct Printer<W: Write> {
    out: BufWriter<W>,
    /// None: JSON lines.
    human: Option<Human>,
    dead_letters: bool,
    flushed: Instant,
}

impl<W: Write> Printer<W> {
    /// `--format auto` is human on a terminal, JSON lines otherwise.
    pub fn new(out: W, format: Format, dead_letters: bool) -> Printer<W> {
        let human = match format {
            Format::Human => true,
            Format::Json => false,
            Format::Auto => io::stdout().is_terminal(),
        };
        Printer {
            out: BufWriter::new(out),
            human: human.then(|| Human::new(dead_letters)),
            dead_letters,
            flushed: Instant::now(),
        }
    }

    /// Prints one record; `value` is its value parsed as JSON, if it is.
    pub fn print(&mut self, r: &Record, value: Option<Value>) -> Result<(), Halt> {
        match &mut self.human {
            Some(h) => h.write(&mut self.out, r, value.as_ref())?,
            None => {
                serde_json::to_writer(&mut self.out, &json_line(r, value, self.dead_letters))
                    .map_err(io::Error::from)?;
                self.out.write_all(b"\n")?;
            }
        }
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), Halt> {
        self.flushed = Instant::now();
        Ok(self.out.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that takes `room` bytes, then is gone.
    struct Pipe {
        room: usize,
    }

    impl Write for Pipe {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = b.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_gone_ends_the_tail_quietly() {
        let mut p = Printer::new(Pipe { room: 10 }, Format::Json, false);
        let r = Record {
            value: Some(b"x"),
            ..Default::default()
        };
        p.print(&r, None).unwrap(); // buffered
        let halt = p.flush().unwrap_err();
        assert!(matches!(halt, Halt::ReaderGone), "{halt:?}");
        assert!(halt.quiet().is_ok());
        let other = Halt::from(io::Error::other("disk full"));
        assert_eq!(other.quiet().unwrap_err().exit_code(), 1);
    }
}
