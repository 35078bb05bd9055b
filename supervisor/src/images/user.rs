//! Who a container runs as, from its securityContext and its image's
//! `User`, with kubelet's and containerd's rules: kubelet first refuses
//! `runAsNonRoot` when the image would run as root or names its user
//! (`CreateContainerConfigError`: a name cannot be verified); then
//! `runAsUser` wins over the image's user, `runAsGroup` over the user's
//! group; a name is looked up in the image's `/etc/passwd` and
//! `/etc/group`, a uid found there brings its group, and the groups of
//! `/etc/group` that list the user are added (containerd's
//! `WithAdditionalGIDs`). Reads files only through `image::config`.

use image::config::read_image_file;
use std::path::{Path, PathBuf};

/// The credentials the container's process gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    /// The primary group first, then the user's groups from /etc/group.
    pub additional_gids: Vec<u32>,
}

/// Why no user could be decided; the first two are kubelet's
/// `CreateContainerConfigError`, the others containerd's create errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("container has runAsNonRoot and image will run as root (container: {container})")]
    WouldRunAsRoot { container: String },
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (container: {container})"
    )]
    NonNumericUser { container: String, user: String },
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoSuchUser { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    NoSuchGroup { group: String },
}

impl UserError {
    /// Whether kubelet reports it as `CreateContainerConfigError` (else
    /// `CreateContainerError`, from the runtime).
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            UserError::WouldRunAsRoot { .. } | UserError::NonNumericUser { .. }
        )
    }
}

/// The securityContext fields that decide the user.
#[derive(Debug, Clone, Copy)]
pub struct UserRequest<'a> {
    pub container: &'a str,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub run_as_non_root: bool,
    /// The image config's `User`.
    pub image_user: &'a str,
}

/// The user of a container whose image layers are `top_first`.
pub fn resolve(request: UserRequest<'_>, top_first: &[PathBuf]) -> Result<ImageUser, UserError> {
    let (user_part, group_part) = match request.image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (request.image_user, None),
    };
    if request.run_as_non_root && request.run_as_user.is_none() {
        match user_part.parse::<u32>() {
            _ if user_part.is_empty() => {
                return Err(UserError::WouldRunAsRoot {
                    container: request.container.to_string(),
                });
            }
            Ok(0) => {
                return Err(UserError::WouldRunAsRoot {
                    container: request.container.to_string(),
                });
            }
            Ok(_) => {}
            Err(_) => {
                return Err(UserError::NonNumericUser {
                    container: request.container.to_string(),
                    user: user_part.to_string(),
                });
            }
        }
    }
    let passwd = read_image_file(top_first, Path::new("/etc/passwd"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let group_file = read_image_file(top_first, Path::new("/etc/group"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let entries = PasswdEntry::parse_all(&passwd);

    let (uid, entry) = match request.run_as_user {
        Some(uid) => (uid, entries.iter().find(|e| e.uid == uid)),
        None if user_part.is_empty() => (0, entries.iter().find(|e| e.uid == 0)),
        None => match user_part.parse::<u32>() {
            Ok(uid) => (uid, entries.iter().find(|e| e.uid == uid)),
            Err(_) => {
                let entry = entries
                    .iter()
                    .find(|e| e.name == user_part)
                    .ok_or_else(|| UserError::NoSuchUser {
                        user: user_part.to_string(),
                    })?;
                (entry.uid, Some(entry))
            }
        },
    };
    let image_gid = match group_part.filter(|g| !g.is_empty()) {
        // The image's group counts only with the image's user.
        Some(group) if request.run_as_user.is_none() => Some(match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_gid(&group_file, group).ok_or_else(|| UserError::NoSuchGroup {
                group: group.to_string(),
            })?,
        }),
        _ => None,
    };
    let gid = request
        .run_as_group
        .or(image_gid)
        .or(entry.map(|e| e.gid))
        .unwrap_or(0);
    let mut additional_gids = vec![gid];
    if let Some(entry) = entry {
        for g in groups_of(&group_file, entry.name) {
            if !additional_gids.contains(&g) {
                additional_gids.push(g);
            }
        }
    }
    Ok(ImageUser {
        uid,
        gid,
        additional_gids,
    })
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

impl<'a> PasswdEntry<'a> {
    /// `name:password:uid:gid:gecos:home:shell` lines; malformed ones are
    /// skipped, as libc's parser does.
    fn parse_all(text: &'a str) -> Vec<PasswdEntry<'a>> {
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let _password = fields.next()?;
                let uid = fields.next()?.parse().ok()?;
                let gid = fields.next()?.parse().ok()?;
                Some(PasswdEntry { name, uid, gid })
            })
            .collect()
    }
}

/// `name:password:gid:members` lines: the gid of group `name`.
fn group_gid(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// The gids of the groups listing `user` as a member.
fn groups_of(text: &str, user: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [_, _, gid, members] = fields.as_slice() else {
                return None;
            };
            members
                .split(',')
                .any(|m| m == user)
                .then(|| gid.parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(passwd: &str, group: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        let layers = vec![dir.path().to_path_buf()];
        (dir, layers)
    }

    fn request<'a>(image_user: &'a str) -> UserRequest<'a> {
        UserRequest {
            container: "c",
            run_as_user: None,
            run_as_group: None,
            run_as_non_root: false,
            image_user,
        }
    }

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/:/bin/false\nbad line\n";
    const GROUP: &str = "root:x:0:\nnginx:x:101:\nwww:x:33:nginx,other\nadm:x:4:other\n";

    #[test]
    fn names_and_numbers_resolve_through_the_image_files() {
        let (_dir, layers) = image(PASSWD, GROUP);
        let nginx = resolve(request("nginx"), &layers).unwrap();
        assert_eq!((nginx.uid, nginx.gid), (101, 101));
        assert_eq!(nginx.additional_gids, vec![101, 33]);
        let numeric = resolve(request("101"), &layers).unwrap();
        assert_eq!((numeric.uid, numeric.gid), (101, 101));
        let unknown_uid = resolve(request("5000"), &layers).unwrap();
        assert_eq!((unknown_uid.uid, unknown_uid.gid), (5000, 0));
        let with_group = resolve(request("nginx:adm"), &layers).unwrap();
        assert_eq!((with_group.uid, with_group.gid), (101, 4));
        let root = resolve(request(""), &layers).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(
            resolve(request("nobody"), &layers),
            Err(UserError::NoSuchUser {
                user: "nobody".into()
            })
        );
        assert_eq!(
            resolve(request("nginx:staff"), &layers),
            Err(UserError::NoSuchGroup {
                group: "staff".into()
            })
        );
    }

    #[test]
    fn run_as_user_and_group_win_over_the_image() {
        let (_dir, layers) = image(PASSWD, GROUP);
        let mut r = request("nginx:adm");
        r.run_as_user = Some(101);
        let u = resolve(r, &layers).unwrap();
        assert_eq!(
            (u.uid, u.gid),
            (101, 101),
            "the image's group goes with its user"
        );
        r.run_as_group = Some(7);
        assert_eq!(resolve(r, &layers).unwrap().gid, 7);
    }

    #[test]
    fn run_as_non_root_is_checked_against_the_image_user_as_kubelet_does() {
        let (_dir, layers) = image(PASSWD, GROUP);
        let mut r = request("nginx");
        r.run_as_non_root = true;
        let error = resolve(r, &layers).unwrap_err();
        assert!(error.is_config_error());
        assert!(
            error.to_string().contains("non-numeric user (nginx)"),
            "{error}"
        );
        r.image_user = "";
        assert!(matches!(
            resolve(r, &layers),
            Err(UserError::WouldRunAsRoot { .. })
        ));
        r.image_user = "0:0";
        assert!(matches!(
            resolve(r, &layers),
            Err(UserError::WouldRunAsRoot { .. })
        ));
        r.image_user = "101";
        assert_eq!(resolve(r, &layers).unwrap().uid, 101);
        r.image_user = "nginx";
        r.run_as_user = Some(1000);
        assert_eq!(resolve(r, &layers).unwrap().uid, 1000);
    }
}
