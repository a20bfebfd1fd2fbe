//! Approved tool environments: the data file that maps a TES executor's
//! `image` to what runs (the host's tool set, or a root file system
//! unpacked beforehand from an OCI image) and the commands it may run.
//! Nothing is pulled from a registry at run time.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The embedded default policy (`policy/images.toml`).
pub const DEFAULT_POLICY: &str = include_str!("../policy/images.toml");
/// Where executables are looked up, inside the sandbox as on the host.
pub const TOOL_PATH: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/bin"];

/// What an image is.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    /// The host's own tool set.
    Host,
    /// A root file system directory unpacked from an OCI image.
    Rootfs,
}

/// One approved environment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The name an executor's `image` must equal.
    pub name: String,
    /// Why it is approved (recorded with decisions).
    pub reason: String,
    /// Host tool set or unpacked root file system.
    pub kind: ImageKind,
    /// For `rootfs`: the directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Sandbox profile (built-in name or file).
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Program names an executor may run (looked up in [`TOOL_PATH`]).
    pub commands: Vec<String>,
}

fn default_profile() -> String {
    "genomics-tools".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    #[serde(default)]
    image: Vec<Image>,
}

/// Why a policy or an executor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The policy file is malformed.
    #[error("image policy {origin}: {why}")]
    Policy {
        /// File or `embedded`.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// The image is not approved.
    #[error(
        "image {name:?} is not an approved tool environment (approved: {known}); nothing is pulled from a registry"
    )]
    Unknown {
        /// What was asked for.
        name: String,
        /// The approved names.
        known: String,
    },
    /// The command is not allowed in this image.
    #[error("command {command:?} is not allowed in image {image:?} (allowed: {allowed})")]
    Command {
        /// The image.
        image: String,
        /// The program.
        command: String,
        /// What is allowed.
        allowed: String,
    },
    /// The program cannot be found where it must be.
    #[error("{command:?} is allowed in image {image:?} but is not installed there ({where_})")]
    Missing {
        /// The image.
        image: String,
        /// The program.
        command: String,
        /// Where it was looked for.
        where_: String,
    },
}

/// The approved images.
#[derive(Clone, Debug)]
pub struct ImagePolicy {
    images: Vec<Image>,
}

impl ImagePolicy {
    /// The embedded default.
    pub fn embedded() -> Self {
        Self::parse(DEFAULT_POLICY, "embedded").expect("the embedded image policy parses")
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, ImageError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ImageError::Policy { origin: origin.clone(), why: e.to_string() })?;
        Self::parse(&text, &origin)
    }

    /// Parses and checks a policy.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ImageError> {
        let bad = |why: String| ImageError::Policy { origin: origin.to_owned(), why };
        let f: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if f.version != 1 {
            return Err(bad(format!("version {} is not supported (1 is)", f.version)));
        }
        let mut names = std::collections::BTreeSet::new();
        for i in &f.image {
            if i.name.is_empty() || !names.insert(i.name.as_str()) {
                return Err(bad(format!("image name {:?} is empty or repeated", i.name)));
            }
            if i.reason.trim().is_empty() {
                return Err(bad(format!("image {:?} has no reason", i.name)));
            }
            match (&i.kind, &i.path) {
                (ImageKind::Rootfs, Some(p)) if p.is_absolute() => {}
                (ImageKind::Rootfs, _) => return Err(bad(format!("rootfs image {:?} needs an absolute path", i.name))),
                (ImageKind::Host, Some(_)) => return Err(bad(format!("host image {:?} takes no path", i.name))),
                (ImageKind::Host, None) => {}
            }
            for c in &i.commands {
                if c.is_empty() || c.contains('/') || c.starts_with('.') {
                    return Err(bad(format!("image {:?}: command {c:?} must be a plain program name", i.name)));
                }
            }
        }
        Ok(Self { images: f.image })
    }

    /// The approved image called `name`.
    pub fn image(&self, name: &str) -> Result<&Image, ImageError> {
        self.images.iter().find(|i| i.name == name).ok_or_else(|| ImageError::Unknown {
            name: name.chars().take(256).collect(),
            known: self.images.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Checks an executor: an approved image and an allowed program, given
    /// by name or by its absolute path in [`TOOL_PATH`].
    pub fn check(&self, image: &str, argv0: &str) -> Result<&Image, ImageError> {
        let img = self.image(image)?;
        img.program_name(argv0)?;
        Ok(img)
    }
}

impl Image {
    /// The allowed program name `argv0` stands for.
    pub fn program_name<'a>(&self, argv0: &'a str) -> Result<&'a str, ImageError> {
        let name = match argv0.rsplit_once('/') {
            Some((dir, name)) if TOOL_PATH.contains(&dir) => name,
            Some(_) => "",
            None => argv0,
        };
        if !name.is_empty() && self.commands.iter().any(|c| c == name) {
            Ok(name)
        } else {
            Err(ImageError::Command {
                image: self.name.clone(),
                command: argv0.chars().take(256).collect(),
                allowed: self.commands.join(", "),
            })
        }
    }

    /// Where the image's files are: `/` for the host, else its directory.
    pub fn root(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new("/"))
    }

    /// Finds an allowed program in the image (on the worker, before it runs).
    pub fn resolve(&self, argv0: &str) -> Result<PathBuf, ImageError> {
        let name = self.program_name(argv0)?;
        let root = self.root();
        for dir in TOOL_PATH {
            let p = root.join(dir.trim_start_matches('/')).join(name);
            if p.is_file() {
                return Ok(Path::new(dir).join(name));
            }
        }
        Err(ImageError::Missing {
            image: self.name.clone(),
            command: name.to_owned(),
            where_: format!("{} under {}", TOOL_PATH.join(":"), root.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_images_and_commands_are_refused_by_name() {
        let p = ImagePolicy::embedded();
        let e = p.check("ubuntu:latest", "bwa").unwrap_err();
        assert!(e.to_string().contains("ubuntu:latest") && e.to_string().contains("debian:bookworm"), "{e}");
        for cmd in ["sh", "bash", "/bin/sh", "python3", "./bwa", "/tmp/bwa", "/usr/bin/../bin/sh", ""] {
            assert!(matches!(p.check("debian:bookworm", cmd), Err(ImageError::Command { .. })), "{cmd:?}");
        }
        p.check("debian:bookworm", "bwa").unwrap();
        p.check("debian:bookworm", "/usr/bin/samtools").unwrap();
    }

    #[test]
    fn policy_errors_are_specific() {
        for (text, want) in [
            ("version = 2", "version 2"),
            ("version = 1\n[[image]]\nname='a'\nreason=''\nkind='host'\ncommands=[]", "no reason"),
            ("version = 1\n[[image]]\nname='a'\nreason='r'\nkind='rootfs'\ncommands=[]", "absolute path"),
            ("version = 1\n[[image]]\nname='a'\nreason='r'\nkind='host'\ncommands=['/bin/sh']", "plain program"),
            ("version = 1\n[[image]]\nname='a'\nreason='r'\nkind='host'\ncommands=[]\nextra=1", "unknown field"),
        ] {
            let e = ImagePolicy::parse(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("t.toml"), "{e}");
        }
    }

    #[test]
    fn host_tools_resolve_on_this_machine() {
        let p = ImagePolicy::embedded();
        let img = p.image("debian:bookworm").unwrap();
        assert_eq!(img.resolve("cat").unwrap(), Path::new("/usr/bin/cat"));
    }
}
