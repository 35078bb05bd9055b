//! The one thread of control of `supervisor run`: an epoll set over the
//! signalfd, the containers' pidfds and log pipes, and a single timerfd
//! armed for the earliest deadline (back-off, grace period, probes).
//!
//! Nothing polls: when no fd is ready and no deadline is due, the process
//! sleeps in `epoll_wait` and costs no wake-ups. Callers identify fds with
//! their own `u64` tokens; the timer has a token of its own.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// The token `wait` reports when the deadline passed.
pub const TIMER: u64 = u64::MAX;

/// Errors of the event loop's own system calls.
#[derive(Debug, thiserror::Error)]
pub enum EventLoopError {
    #[error("{call}: {errno}")]
    Sys {
        call: &'static str,
        errno: nix::errno::Errno,
    },
}

fn sys(call: &'static str) -> impl FnOnce(nix::errno::Errno) -> EventLoopError {
    move |errno| EventLoopError::Sys { call, errno }
}

pub struct EventLoop {
    epoll: Epoll,
    timer: TimerFd,
    armed: Option<Instant>,
    events: Vec<EpollEvent>,
}

impl EventLoop {
    pub fn new() -> Result<EventLoop, EventLoopError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys("epoll_create1"))?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .map_err(sys("timerfd_create"))?;
        epoll
            .add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER))
            .map_err(sys("epoll_ctl(ADD timerfd)"))?;
        Ok(EventLoop {
            epoll,
            timer,
            armed: None,
            events: vec![EpollEvent::empty(); 64],
        })
    }

    /// Watch `fd` for input (or hang-up), reported as `token`.
    pub fn watch(&self, fd: BorrowedFd<'_>, token: u64) -> Result<(), EventLoopError> {
        assert_ne!(token, TIMER, "token reserved for the timer");
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(sys("epoll_ctl(ADD)"))
    }

    /// Watch `fd` for the `flags` events (e.g. `EPOLLOUT` for a connecting
    /// socket), reported as `token`. Errors and hang-ups are always
    /// reported.
    pub fn watch_with(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        flags: EpollFlags,
    ) -> Result<(), EventLoopError> {
        assert_ne!(token, TIMER, "token reserved for the timer");
        self.epoll
            .add(fd, EpollEvent::new(flags, token))
            .map_err(sys("epoll_ctl(ADD)"))
    }

    /// Change the events `fd` (already watched) is watched for.
    pub fn rewatch(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        flags: EpollFlags,
    ) -> Result<(), EventLoopError> {
        assert_ne!(token, TIMER, "token reserved for the timer");
        let mut event = EpollEvent::new(flags, token);
        self.epoll
            .modify(fd, &mut event)
            .map_err(sys("epoll_ctl(MOD)"))
    }

    /// Stop watching `fd` (call before closing it).
    pub fn unwatch(&self, fd: BorrowedFd<'_>) -> Result<(), EventLoopError> {
        self.epoll.delete(fd).map_err(sys("epoll_ctl(DEL)"))
    }

    /// Arm the timer for `deadline` (None: disarm). Only re-programs the
    /// timerfd when the deadline changes.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) -> Result<(), EventLoopError> {
        if deadline == self.armed {
            return Ok(());
        }
        self.armed = deadline;
        match deadline {
            None => self.timer.unset().map_err(sys("timerfd_settime(disarm)")),
            Some(at) => {
                // A zero expiration would disarm: round up to 1 ns.
                let delay = at
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                self.timer
                    .set(
                        Expiration::OneShot(TimeSpec::from_duration(delay)),
                        TimerSetTimeFlags::empty(),
                    )
                    .map_err(sys("timerfd_settime"))
            }
        }
    }

    /// Sleep until an fd is ready or the deadline passes; return the tokens
    /// that are ready (TIMER when the deadline passed).
    pub fn wait(&mut self) -> Result<Vec<u64>, EventLoopError> {
        let n = loop {
            match self.epoll.wait(&mut self.events, EpollTimeout::NONE) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(sys("epoll_wait")(e)),
            }
        };
        let mut ready = Vec::with_capacity(n);
        for event in &self.events[..n] {
            if event.data() == TIMER {
                // Drain the expiration count; the deadline is spent.
                let mut count = [0u8; 8];
                let _ = nix::unistd::read(self.timer.as_fd(), &mut count);
                self.armed = None;
            }
            ready.push(event.data());
        }
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_fires_at_the_deadline_and_only_once() {
        let mut event_loop = EventLoop::new().unwrap();
        let start = Instant::now();
        event_loop
            .set_deadline(Some(start + Duration::from_millis(30)))
            .unwrap();
        assert_eq!(event_loop.wait().unwrap(), vec![TIMER]);
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Spent: a new wait sees only the pipe.
        let (read, write) = nix::unistd::pipe().unwrap();
        event_loop.watch(read.as_fd(), 7).unwrap();
        nix::unistd::write(&write, b"x").unwrap();
        assert_eq!(event_loop.wait().unwrap(), vec![7]);
        event_loop.unwatch(read.as_fd()).unwrap();
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once() {
        let mut event_loop = EventLoop::new().unwrap();
        event_loop
            .set_deadline(Some(Instant::now() - Duration::from_secs(1)))
            .unwrap();
        assert_eq!(event_loop.wait().unwrap(), vec![TIMER]);
    }
}
