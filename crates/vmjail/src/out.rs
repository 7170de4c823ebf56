//! Lines to stdout and stderr that never panic: `println!`/`eprintln!`
//! panic when the stream is a closed pipe (`vmjail run … 2>&1 | head -c
//! 100`), and a panic in `run` left its sandbox running. What cannot be
//! written is dropped; the command goes on (and cleans up).

/// `println!` that ignores a closed or failing stdout.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(
            &mut std::io::stdout(),
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}

/// `print!` that ignores a closed or failing stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        let mut stdout = std::io::stdout();
        let _ = std::io::Write::write_fmt(&mut stdout, format_args!($($arg)*));
        let _ = std::io::Write::flush(&mut stdout);
    }};
}

/// `eprintln!` that ignores a closed or failing stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}

/// `eprint!` that ignores a closed or failing stderr.
macro_rules! err {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!($($arg)*));
    }};
}

pub(crate) use {err, errln, out, outln};
