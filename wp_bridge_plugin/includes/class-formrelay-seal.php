<?php
/**
 * Sealed submissions (issue 16, README "Sealed submissions"): a capture's snapshot
 * encrypted to the sidecar's public key before the INSERT.
 *
 * The key pair is X25519 (`formrelay keys generate`): the public half, standard
 * base64 of its 32 bytes, comes from FormRelay_Settings::seal_public_key() (the
 * constant FORMRELAY_SEAL_PUBLIC_KEY, else the settings' `seal_public_key`); only
 * the sidecar holds the private half (sidecar/seal.py opens what this writes). A
 * key id names a pair: the first 16 hex characters of the SHA-256 of the raw
 * public key, stored in the job row's `seal_key` beside the ciphertext.
 *
 * seal() gives the row's snapshot: base64 of sodium_crypto_box_seal( JSON, key ),
 * and the key id; with no key configured, the JSON as it is and no id. When a key
 * is configured but the snapshot cannot be sealed (no sodium, a key that is not
 * 32 bytes of base64, a SodiumException) the JSON is stored in clear and capture
 * writes a `job.unsealed` log row (unsealed()): the form never fails for it.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The seal public key, its id, and sealing a snapshot.
 */
final class FormRelay_Seal {

	const KEY_BYTES = 32;

	/** Standard base64 of 32 bytes: 43 characters and one "=". */
	const KEY_PATTERN = '#^[A-Za-z0-9+/]{43}=\z#';

	/**
	 * The last key decoded in this request: its text, raw bytes ('' = invalid) and id.
	 *
	 * @var array{text: string, raw: string, id: string}|null
	 */
	private static $cache = null;

	/**
	 * The raw 32 bytes of a base64 public key, or '' when it is not one.
	 *
	 * @param mixed $text Candidate (surrounding white space is ignored).
	 * @return string
	 */
	public static function decode( $text ) {
		if ( ! is_string( $text ) || 1 !== preg_match( self::KEY_PATTERN, trim( $text ) ) ) {
			return '';
		}
		$raw = base64_decode( trim( $text ), true ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_decode -- a public key, as `formrelay keys generate` prints it.
		return is_string( $raw ) && self::KEY_BYTES === strlen( $raw ) ? $raw : '';
	}

	/**
	 * A raw public key's id: the first 16 hex characters of its SHA-256.
	 *
	 * @param string $raw The 32 bytes.
	 * @return string
	 */
	public static function id_of( $raw ) {
		return substr( hash( 'sha256', $raw ), 0, 16 );
	}

	/**
	 * The configured key, decoded once per request (and again only when it changes).
	 *
	 * @return array{text: string, raw: string, id: string} `text` '' = none; `raw` '' = none or invalid.
	 */
	public static function current() {
		$text = trim( FormRelay_Settings::seal_public_key() );
		if ( null === self::$cache || self::$cache['text'] !== $text ) {
			$raw         = '' === $text ? '' : self::decode( $text );
			self::$cache = array(
				'text' => $text,
				'raw'  => $raw,
				'id'   => '' === $raw ? '' : self::id_of( $raw ),
			);
		}
		return self::$cache;
	}

	/**
	 * The configured public key's raw 32 bytes ('' when none or invalid).
	 *
	 * @return string
	 */
	public static function raw_key() {
		return self::current()['raw'];
	}

	/**
	 * The configured public key's id ('' when none or invalid).
	 *
	 * @return string
	 */
	public static function key_id() {
		return self::current()['id'];
	}

	/**
	 * The configured public key as standard base64 ('' when none or invalid).
	 *
	 * @return string
	 */
	public static function public_key() {
		$raw = self::raw_key();
		return '' === $raw ? '' : base64_encode( $raw ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_encode -- a public key.
	}

	/**
	 * The snapshot to store: array( snapshot, key id or null, why it is not sealed or null ).
	 *
	 * No key configured, or an empty snapshot (the sidecar reads it as missing): the
	 * snapshot as it is, no id, no reason. Sealed: base64 of the sealed box and the key
	 * id. Not sealable: the snapshot as it is, no id, and a reason naming no value.
	 *
	 * @param string $json The snapshot's JSON ('' when it could not be encoded).
	 * @return array{0: string, 1: string|null, 2: string|null}
	 */
	public static function seal( $json ) {
		$key = self::current();
		if ( '' === $key['text'] || '' === $json ) {
			return array( $json, null, null );
		}
		if ( '' === $key['raw'] ) {
			return array( $json, null, 'the seal public key is not 32 bytes in base64' );
		}
		if ( ! function_exists( 'sodium_crypto_box_seal' ) ) {
			return array( $json, null, 'PHP has no sodium extension' );
		}
		try {
			$sealed = sodium_crypto_box_seal( $json, $key['raw'] );
		} catch ( Throwable $e ) {
			// The class only: an exception message is not ours to pass on.
			return array( $json, null, get_class( $e ) );
		}
		return array( base64_encode( $sealed ), $key['id'], null ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_encode -- the column holds text.
	}

	/**
	 * Record that a stored job's snapshot is in clear though a key is configured: a
	 * `job.unsealed` log row (warning) and one PHP error log line, ids only.
	 *
	 * @param int    $job_id   The job just stored.
	 * @param int    $form_id  Form id.
	 * @param int    $entry_id Entry id.
	 * @param string $reason   From seal(); names no value.
	 * @return void
	 */
	public static function unsealed( $job_id, $form_id, $entry_id, $reason ) {
		global $wpdb;
		$message    = sprintf( 'the snapshot is stored in clear: it could not be sealed (%s)', $reason );
		$suppressed = $wpdb->suppress_errors( true );
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables, never cached.
		$logged = $wpdb->query( $wpdb->prepare( "INSERT INTO {$wpdb->prefix}formrelay_log (job_id, level, event, message, created_at) VALUES (%d, 'warning', 'job.unsealed', %s, UTC_TIMESTAMP(3))", $job_id, $message ) );
		$wpdb->suppress_errors( $suppressed );
		// phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log -- ids and a reason only.
		error_log( sprintf( 'FormRelay Bridge: form %d entry %d: job %d %s%s', $form_id, $entry_id, $job_id, $message, false === $logged ? '; its log row could not be written' : '' ) );
	}
}
