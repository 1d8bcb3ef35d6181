//! Where an S3 lake's credentials come from: the same order as object_store's `from_env`
//! chain, decided before any request so that the start log can name the source (never a
//! value) and an S3-compatible server without keys is refused instead of falling through to
//! the cloud's instance-metadata endpoint.

use std::fmt;

use super::LakeConfig;

/// One link of the chain; the first that applies is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN when set).
    Keys { session: bool },
    /// AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN: AssumeRoleWithWebIdentity (EKS IRSA).
    WebIdentity,
    /// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: the ECS task role.
    EcsTask,
    /// AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: EKS Pod
    /// Identity.
    EksPodIdentity,
    /// The EC2 instance-metadata service (IMDSv2), the chain's last link.
    InstanceMetadata,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialSource::Keys { session: false } => {
                "keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            }
            CredentialSource::Keys { session: true } => {
                "temporary keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN"
            }
            CredentialSource::WebIdentity => {
                "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, role AWS_ROLE_ARN)"
            }
            CredentialSource::EcsTask => {
                "the ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"
            }
            CredentialSource::EksPodIdentity => {
                "EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)"
            }
            CredentialSource::InstanceMetadata => "the EC2 instance-metadata service (IMDSv2)",
        })
    }
}

/// The source object_store will use for `cfg`, read from the environment through `var`.
/// With an `--s3-endpoint` (an S3-compatible server, which has no instance-metadata service)
/// the last link is refused, naming the variables that are missing.
pub fn credential_source(
    cfg: &LakeConfig,
    endpoint: Option<&str>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<CredentialSource, String> {
    let set = |v: &str| var(v).is_some_and(|x| !x.is_empty());
    let key = cfg.s3_access_key.is_some() || set("AWS_ACCESS_KEY_ID");
    let secret = cfg.s3_secret_key.is_some() || set("AWS_SECRET_ACCESS_KEY");
    let source = match (key, secret) {
        (true, true) => CredentialSource::Keys {
            session: set("AWS_SESSION_TOKEN"),
        },
        (true, false) | (false, true) => return Err(missing(endpoint, key)),
        _ if set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN") => {
            CredentialSource::WebIdentity
        }
        _ if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") => CredentialSource::EcsTask,
        _ if set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            && set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") =>
        {
            CredentialSource::EksPodIdentity
        }
        _ if endpoint.is_some() => return Err(missing(endpoint, false)),
        _ => CredentialSource::InstanceMetadata,
    };
    Ok(source)
}

fn missing(endpoint: Option<&str>, key: bool) -> String {
    let which = if key {
        "AWS_SECRET_ACCESS_KEY is"
    } else {
        "AWS_ACCESS_KEY_ID is"
    };
    let target = endpoint.map_or("S3".to_string(), |e| e.to_string());
    format!(
        "no S3 credentials for {target}: {which} not set (set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY; for the stack, `eval \"$(scripts/stack.sh env)\"`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(vars: &[(&str, &str)], endpoint: Option<&str>) -> Result<CredentialSource, String> {
        let cfg = LakeConfig::default();
        let var = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        credential_source(&cfg, endpoint, var)
    }

    #[test]
    fn the_chain_is_object_stores_in_order() {
        let keys = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")];
        assert_eq!(
            source(&keys, None),
            Ok(CredentialSource::Keys { session: false })
        );
        let web = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds"),
        ];
        assert_eq!(source(&web, None), Ok(CredentialSource::WebIdentity));
        assert_eq!(source(&web[2..], None), Ok(CredentialSource::EcsTask));
        // A token file without a role is not web identity.
        assert_eq!(
            source(&web[..1], None),
            Ok(CredentialSource::InstanceMetadata)
        );
        let eks = [
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/t"),
        ];
        assert_eq!(source(&eks, None), Ok(CredentialSource::EksPodIdentity));
        assert_eq!(source(&[], None), Ok(CredentialSource::InstanceMetadata));
        let text = CredentialSource::Keys { session: true }.to_string();
        assert!(
            text.contains("AWS_SESSION_TOKEN") && !text.contains('='),
            "{text}"
        );
    }

    #[test]
    fn an_endpoint_never_falls_through_to_instance_metadata() {
        let err = source(&[], Some("http://127.0.0.1:9000")).unwrap_err();
        assert!(err.contains("AWS_ACCESS_KEY_ID is not set"), "{err}");
        let err = source(&[("AWS_ACCESS_KEY_ID", "k")], None).unwrap_err();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY is not set"), "{err}");
        let web = [("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "r")];
        assert_eq!(
            source(&web, Some("http://s3.local")),
            Ok(CredentialSource::WebIdentity)
        );
    }
}
