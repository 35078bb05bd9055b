//! `supervisor`: the command line. Errors become a message and exit code
//! here, at the edge; everything else lives in the library.

fn main() {
    eprintln!("supervisor: being written");
    std::process::exit(2);
}
