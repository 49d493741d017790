//! `byoc plugin new NAME [--kind stream|frames|batch] [--dir DIR]`: writes a plugin crate that
//! builds for `wasm32-wasip2` and passes its tests as written.
//!
//! The crate (`DIR/NAME/`): `Cargo.toml` (the plugin's name, version and description, the
//! SDK's lints and the size-optimised release profile the bundled plugins use, and an empty
//! `[workspace]` so it stands alone anywhere), `src/lib.rs` (a minimal working plugin of the
//! kind), `tests/<crate>.rs` (native tests through the SDK's harness; the byte-level one makes
//! its MPEG-TS fixture with ffmpeg, and skips with a message without it), `manifest.toml`
//! (grants, limits, failure policy), `clippy.toml`, `.gitignore` and a README. The templates
//! are the files in `host/cli/templates/`, compiled into the binary.
//!
//! The SDK is not published, so the crate depends on it by path or by git, in this order:
//! `--sdk PATH`; `--sdk-git URL`; the `sdk/` of the checkout this binary was built from, when it
//! still exists; the git URL given as `BYOC_SDK_GIT` when this binary was built. Without any of
//! them the command fails and says which flag to pass.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The `sdk/` directory of the checkout this binary was built from.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");

#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase ASCII letters, digits and `-`, starting with a letter. It
    /// names the crate, the capability and its directory.
    name: String,
    /// What the plugin works on: MPEG-TS bytes of each segment (`stream`), decoded video frames
    /// (`frames`), or batch requests only (`batch`).
    #[arg(long, value_enum, default_value_t = Kind::Stream)]
    kind: Kind,
    /// The directory to create the crate in (as `DIR/NAME`).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The SDK to depend on: the `sdk/` directory of a byoc checkout [default: the checkout this
    /// `byoc` was built from].
    #[arg(long, conflicts_with = "sdk_git")]
    sdk: Option<PathBuf>,
    /// Depend on the SDK from this git repository (a byoc repository) instead of a path.
    #[arg(long)]
    sdk_git: Option<String>,
    /// The plugin's description (Cargo.toml's, which describe() returns).
    #[arg(long)]
    description: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Byte level: segments as MPEG-TS bytes, chunk by chunk (like `passthrough`).
    Stream,
    /// Frame level: the host decodes and encodes, the plugin works on frames (like `video-effects`).
    Frames,
    /// Batch requests only (like `text-transform`'s batch API).
    Batch,
}

/// How the generated crate depends on the SDK.
#[derive(Debug, PartialEq, Eq)]
enum Sdk {
    Path(PathBuf),
    Git(String),
}

impl Sdk {
    fn dependency(&self) -> String {
        match self {
            Sdk::Path(path) => format!("byoc-sdk = {{ path = {} }}", toml_string(&path.to_string_lossy())),
            Sdk::Git(url) => format!("byoc-sdk = {{ git = {} }}", toml_string(url)),
        }
    }

    fn explanation(&self) -> String {
        match self {
            Sdk::Path(path) => format!(
                "This crate uses the SDK of a local byoc checkout, by path (`{}`): the checkout the \
                 `byoc` that wrote it was built from, or the one given with `--sdk`.",
                path.display()
            ),
            Sdk::Git(url) => format!("This crate takes the SDK from git (`{url}`)."),
        }
    }
}

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    let sdk = choose_sdk(args.sdk.as_deref(), args.sdk_git.as_deref(), Path::new(BUILT_FROM_SDK))?;
    let dir = args.dir.join(&args.name);
    write_crate(&args.name, args.kind, args.description.as_deref(), &sdk, &dir)?;
    println!("created {} ({} plugin) in {}", args.name, kind_text(args.kind), dir.display());
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  cargo test                    # native tests through the SDK's harness");
    println!("  byoc plugin build --install   # wasm32-wasip2 component, installed in target/plugins/");
    println!("  byoc dev                      # serves target/plugins/ through a gateway");
    Ok(())
}

fn choose_sdk(sdk: Option<&Path>, git: Option<&str>, built_from: &Path) -> anyhow::Result<Sdk> {
    if let Some(path) = sdk {
        let cargo_toml = path.join("Cargo.toml");
        let text = std::fs::read_to_string(&cargo_toml)
            .with_context(|| format!("--sdk {}: reading Cargo.toml", path.display()))?;
        if !text.lines().any(|l| l.replace(' ', "") == "name=\"byoc-sdk\"") {
            bail!("--sdk {}: {} is not the byoc-sdk crate", path.display(), cargo_toml.display());
        }
        let path = std::fs::canonicalize(path).with_context(|| format!("--sdk {}", path.display()))?;
        return Ok(Sdk::Path(path));
    }
    if let Some(url) = git {
        return Ok(Sdk::Git(url.to_owned()));
    }
    if built_from.join("Cargo.toml").is_file()
        && let Ok(path) = std::fs::canonicalize(built_from)
    {
        return Ok(Sdk::Path(path));
    }
    if let Some(url) = option_env!("BYOC_SDK_GIT") {
        return Ok(Sdk::Git(url.to_owned()));
    }
    bail!(
        "no byoc SDK to depend on: this byoc was built from a checkout that is gone ({}); pass \
         --sdk PATH (the sdk/ directory of a byoc checkout) or --sdk-git URL (a byoc git repository)",
        built_from.display()
    )
}

/// Checks a plugin name: a valid capability name that is also a usable crate name.
fn check_name(name: &str) -> anyhow::Result<()> {
    byoc_runtime::valid_name(name).map_err(anyhow::Error::msg)?;
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.ends_with('-') {
        bail!("name {name:?} must start with a letter and not end with `-` (it names a Rust crate)");
    }
    const RESERVED: &[&str] = &[
        "alloc",
        "core",
        "std",
        "test",
        "proc-macro",
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "gen",
        "macro",
        "override",
        "priv",
        "try",
        "typeof",
        "unsized",
        "virtual",
        "yield",
    ];
    if RESERVED.contains(&name) {
        bail!("name {name:?} is reserved in Rust; choose another");
    }
    Ok(())
}

/// `my-plugin` → `MyPlugin`.
fn type_name(name: &str) -> String {
    name.split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Stream => "byte-level stream",
        Kind::Frames => "frame",
        Kind::Batch => "batch",
    }
}

/// A TOML basic string, quoted (a JSON string is one).
fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Writes the crate into `dir`, which must not exist or be empty.
fn write_crate(name: &str, kind: Kind, description: Option<&str>, sdk: &Sdk, dir: &Path) -> anyhow::Result<()> {
    check_name(name)?;
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let crate_name = name.replace('-', "_");
    let default_description = match kind {
        Kind::Stream => "Passes video through and publishes an event per segment",
        Kind::Frames => "Inverts the colours of video frames",
        Kind::Batch => "Answers text in upper case with a word count",
    };
    let description = description.unwrap_or(default_description);
    let description_toml = toml_string(description);
    let (lib, test, memory_mib, call_timeout_ms, max_output) = match kind {
        Kind::Stream => (TEMPLATE_LIB_STREAM, TEMPLATE_TEST_STREAM, "32", "1000", "4194304"),
        Kind::Frames => (TEMPLATE_LIB_FRAMES, TEMPLATE_TEST_FRAMES, "64", "500", "65536"),
        Kind::Batch => (TEMPLATE_LIB_BATCH, TEMPLATE_TEST_BATCH, "32", "1000", "1048576"),
    };
    let run_example = match kind {
        Kind::Stream => {
            format!("byoc plugin run {name} --input seg.ts --output out/   # one session over a segment file")
        }
        Kind::Frames => {
            format!("byoc plugin run {name} --input seg.ts --output out/ --params '{{\"invert\": true}}'")
        }
        Kind::Batch => "# (batch only: `byoc plugin run` runs stream sessions; call it through `byoc dev`)".to_owned(),
    };
    let stream_example = match kind {
        Kind::Batch => format!(
            "With `byoc dev` running, call it through the gateway:\n\n```sh\nJOB=$(printf '%s' \
             '{{\"request\":\"{{}}\",\"parameters\":\"{{}}\",\"capability\":\"{name}\",\"timeout_seconds\":30}}' | base64 -w0)\n\
             curl -s -X POST -H \"Livepeer: $JOB\" -H 'Content-Type: application/json' \\\n    \
             -d '{{\"text\": \"hello\"}}' http://127.0.0.1:8937/process/request/{name}\n```"
        ),
        Kind::Stream | Kind::Frames => format!(
            "With `byoc dev` running, start a stream on it through the gateway, send a segment and read \
             the output (`seg.ts`: any MPEG-TS file, e.g. `ffmpeg -f lavfi -i testsrc -t 2 -c:v libx264 \
             -f mpegts seg.ts`):\n\n```sh\nJOB=$(printf '%s' \
             '{{\"request\":\"{{}}\",\"parameters\":\"{{\\\"enable_video_ingress\\\":true,\\\"enable_video_egress\\\":true}}\",\"capability\":\"{name}\",\"timeout_seconds\":30}}' | base64 -w0)\n\
             START=$(curl -s -X POST -H \"Livepeer: $JOB\" -d '{{\"stream_name\":\"try\"}}' http://127.0.0.1:8937/process/stream/start)\n\
             SECRET=$(echo \"$START\" | jq -r .stream_secret)\n\
             curl -s -H \"Authorization: Bearer $SECRET\" \"$(echo \"$START\" | jq -r .egress_url)/0\" -o out.ts &\n\
             curl -s -X POST -H \"Authorization: Bearer $SECRET\" --data-binary @seg.ts \"$(echo \"$START\" | jq -r .ingest_url)/0\"\n\
             wait; ls -l out.ts\n\
             curl -sN \"$(echo \"$START\" | jq -r .events_url)\"      # the plugin's events (Ctrl-C)\n```"
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{type}}", &type_name(name))
            .replace("{{description}}", &description_toml)
            .replace("{{sdk}}", &sdk.dependency())
            .replace("{{sdk_text}}", &sdk.explanation())
            .replace("{{kind_text}}", kind_text(kind))
            .replace("{{memory_mib}}", memory_mib)
            .replace("{{call_timeout_ms}}", call_timeout_ms)
            .replace("{{max_output}}", max_output)
            .replace("{{run_example}}", &run_example)
            .replace("{{stream_example}}", &stream_example)
    };
    let files: [(PathBuf, String); 7] = [
        (PathBuf::from("Cargo.toml"), fill(TEMPLATE_CARGO_TOML)),
        (PathBuf::from("manifest.toml"), fill(TEMPLATE_MANIFEST)),
        (PathBuf::from("README.md"), fill(TEMPLATE_README)),
        (PathBuf::from("clippy.toml"), TEMPLATE_CLIPPY.to_owned()),
        (PathBuf::from(".gitignore"), TEMPLATE_GITIGNORE.to_owned()),
        (Path::new("src").join("lib.rs"), fill(lib)),
        (Path::new("tests").join(format!("{crate_name}.rs")), fill(test)),
    ];
    for (relative, content) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

const TEMPLATE_CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.tmpl");
const TEMPLATE_MANIFEST: &str = include_str!("../../templates/manifest.toml.tmpl");
const TEMPLATE_README: &str = include_str!("../../templates/README.md.tmpl");
const TEMPLATE_CLIPPY: &str = include_str!("../../templates/clippy.toml");
const TEMPLATE_GITIGNORE: &str = include_str!("../../templates/gitignore");
const TEMPLATE_LIB_STREAM: &str = include_str!("../../templates/lib-stream.rs");
const TEMPLATE_LIB_FRAMES: &str = include_str!("../../templates/lib-frames.rs");
const TEMPLATE_LIB_BATCH: &str = include_str!("../../templates/lib-batch.rs");
const TEMPLATE_TEST_STREAM: &str = include_str!("../../templates/test-stream.rs");
const TEMPLATE_TEST_FRAMES: &str = include_str!("../../templates/test-frames.rs");
const TEMPLATE_TEST_BATCH: &str = include_str!("../../templates/test-batch.rs");

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[table]` of a TOML document, as its lines without comments or blank lines.
    fn table(text: &str, header: &str) -> Vec<String> {
        text.lines()
            .skip_while(|l| l.trim() != header)
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .map(|l| l.split('#').next().unwrap_or_default().trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn the_template_has_the_bundled_plugins_release_profile_and_lints() {
        let plugins =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/Cargo.toml")).unwrap();
        let template = TEMPLATE_CARGO_TOML;
        assert_eq!(table(template, "[profile.release]"), table(&plugins, "[profile.release]"));
        assert_eq!(table(template, "[lints.rust]"), table(&plugins, "[workspace.lints.rust]"));
        assert_eq!(table(template, "[lints.clippy]"), table(&plugins, "[workspace.lints.clippy]"));
        let clippy =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/clippy.toml")).unwrap();
        let settings = |t: &str| t.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(settings(TEMPLATE_CLIPPY), settings(&clippy));
    }

    #[test]
    fn names_must_make_a_capability_and_a_crate() {
        for good in ["keyframes", "my-plugin", "x2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My", "2x", "a_b", "trailing-", "type", "test", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(type_name("my-plugin"), "MyPlugin");
        assert_eq!(type_name("x2"), "X2");
    }

    #[test]
    fn the_sdk_is_the_flag_then_the_build_checkout_then_an_error() {
        let sdk = Path::new(BUILT_FROM_SDK);
        let canonical = std::fs::canonicalize(sdk).unwrap();
        assert_eq!(choose_sdk(None, None, sdk).unwrap(), Sdk::Path(canonical.clone()));
        assert_eq!(choose_sdk(Some(sdk), None, Path::new("/nowhere")).unwrap(), Sdk::Path(canonical));
        assert_eq!(
            choose_sdk(None, Some("https://example.com/byoc"), sdk).unwrap(),
            Sdk::Git("https://example.com/byoc".into())
        );
        let not_sdk = choose_sdk(Some(Path::new(env!("CARGO_MANIFEST_DIR"))), None, sdk).unwrap_err();
        assert!(not_sdk.to_string().contains("not the byoc-sdk crate"), "{not_sdk}");
        if option_env!("BYOC_SDK_GIT").is_none() {
            let none = choose_sdk(None, None, Path::new("/nowhere/sdk")).unwrap_err().to_string();
            assert!(none.contains("--sdk PATH") && none.contains("/nowhere/sdk"), "{none}");
        }
        assert_eq!(Sdk::Path(PathBuf::from("/a \"b\"/sdk")).dependency(), r#"byoc-sdk = { path = "/a \"b\"/sdk" }"#);
    }

    #[test]
    fn a_crate_is_written_once_with_every_placeholder_filled() {
        let root = tempfile::tempdir().unwrap();
        for kind in [Kind::Stream, Kind::Frames, Kind::Batch] {
            let dir = root.path().join(kind_text(kind).replace(' ', "-"));
            let sdk = Sdk::Path(PathBuf::from("/sdk"));
            write_crate("my-plugin", kind, Some("Says \"hi\""), &sdk, &dir).unwrap();
            for file in ["Cargo.toml", "manifest.toml", "README.md", "src/lib.rs", "tests/my_plugin.rs", ".gitignore"] {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
            }
            let cargo: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
            assert_eq!(cargo["package"]["description"].as_str(), Some("Says \"hi\""));
            assert_eq!(cargo["dependencies"]["byoc-sdk"]["path"].as_str(), Some("/sdk"));
            let manifest: byoc_runtime::Manifest =
                toml::from_str(&std::fs::read_to_string(dir.join("manifest.toml")).unwrap()).unwrap();
            assert_eq!(manifest.name, None, "the manifest holds no identity");
            let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
            assert!(lib.contains("pub struct MyPlugin") && lib.contains("export!("));
            let again = write_crate("my-plugin", kind, None, &sdk, &dir).unwrap_err().to_string();
            assert!(again.contains("already exists"), "{again}");
        }
    }
}
