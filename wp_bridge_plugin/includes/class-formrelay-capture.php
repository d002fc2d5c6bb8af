<?php
/**
 * Capture: one job row per WPForms submission, inside the form request.
 *
 * On `wpforms_process_complete` (fields, entry, form_data, entry_id) the
 * bridge INSERTs one row into {prefix}formrelay_jobs and does nothing else on
 * the submission's critical path: no HTTP, no file reads (a file's size is a
 * stat), no extra queries. The sidecar's snapshot reader is
 * sidecar/submission.py; the shape written here is its contract:
 *
 *     {"version": 1, "form_id": 12, "entry_id": 34, "template": "x.j2" or null,
 *      "fields": <$fields exactly as the hook gave them>,
 *      "files": [{"field_id": "4", "position": 0, "name": "Referral.pdf",
 *                 "path": "/abs/.../Referral-<hash>.pdf", "relative": "wpforms/12-<md5>/...",
 *                 "url": "https://...", "attachment_id": 0, "size": 1234}]}
 *
 * Sealed (a seal public key set; README "Sealed submissions", FormRelay_Seal):
 * `snapshot` holds base64( sodium_crypto_box_seal( <that JSON>, <raw public key> ) )
 * and `seal_key` the key's id (first 16 hex of its SHA-256); NULL in clear. A
 * key that cannot seal never fails the form: the job is stored in clear, then a
 * `job.unsealed` warning row is written to formrelay_log (ids and a reason only).
 *
 * The row's `partner` is the form's partner setting ('' when it names none:
 * the sidecar's first claim writes the default partner's name over it), read
 * from the autoloaded settings like the priority and template: no query.
 *
 * The job is `pending`, a waiting status: the dashboard counts those live from
 * the queue's index, so capture writes nothing to {prefix}formrelay_counts
 * (migration 0008) and stays one statement, atomic by construction.
 *
 * A failure is logged with ids and the MySQL error number only (messages can
 * quote submitted values) and never reaches the visitor. A deadlock or a lock
 * wait timeout is tried once more (the statement was rolled back); the
 * sidecar's sweep finds an entry still missed (see README, the sweep).
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Turns a WPForms submission into a FormRelay job.
 */
final class FormRelay_Capture {

	const HOOK             = 'wpforms_process_complete';
	const HOOK_PRIORITY    = 20;
	const SNAPSHOT_VERSION = 1;
	const FILE_FIELD       = 'file-upload';
	const MAX_ATTEMPTS     = 10;

	/** MySQL's ER_DUP_ENTRY: this reference (the same entry) is already queued. */
	const ER_DUP_ENTRY = 1062;

	/** MySQL's lock wait timeout and deadlock: the INSERT was rolled back; it may run again. */
	const RETRY_ERRNOS = array( 1205, 1213 );

	/** The INSERT runs at most this often (once more after a deadlock or lock wait timeout). */
	const INSERT_ATTEMPTS = 2;

	/**
	 * Hook the capture into WPForms (late, so other integrations ran first).
	 *
	 * @return void
	 */
	public static function register() {
		add_action( self::HOOK, array( __CLASS__, 'on_process_complete' ), self::HOOK_PRIORITY, 4 );
	}

	/**
	 * The `wpforms_process_complete` callback. Never throws, never prints.
	 *
	 * @param mixed $fields    The processed fields, keyed by field id.
	 * @param mixed $entry     The unslashed $_POST['wpforms'].
	 * @param mixed $form_data The decoded form.
	 * @param mixed $entry_id  The stored entry's id, 0 when none was stored (Lite).
	 * @return void
	 */
	public static function on_process_complete( $fields, $entry, $form_data, $entry_id = 0 ) {
		$form_id  = self::form_id( $entry, $form_data );
		$entry_id = is_numeric( $entry_id ) ? absint( $entry_id ) : 0;
		try {
			if ( $form_id < 1 ) {
				self::log_failure( $form_id, $entry_id, 'no form id' );
				return;
			}
			if ( ! FormRelay_Settings::form_selected( $form_id ) ) {
				return;
			}
			$job_id = self::queue( $form_id, $entry_id, $fields );
			if ( $job_id > 0 ) {
				FormRelay_Notify::queue( $job_id );
			}
		} catch ( Throwable $e ) {
			// The class and line say where; an exception message could quote a value.
			self::log_failure( $form_id, $entry_id, sprintf( '%s at %s:%d', get_class( $e ), basename( $e->getFile() ), $e->getLine() ) );
		}
	}

	/**
	 * INSERT the job; its id, or 0 when it exists already or could not be stored.
	 *
	 * @param int   $form_id  Form id (> 0).
	 * @param int   $entry_id Entry id, 0 when WPForms stored none.
	 * @param mixed $fields   The hook's fields.
	 * @return int
	 */
	public static function queue( $form_id, $entry_id, $fields ) {
		$reference = $entry_id > 0
			? sprintf( 'wpforms:%d:%d', $form_id, $entry_id )
			: sprintf( 'wpforms:%d:%s', $form_id, wp_generate_uuid4() );
		$snapshot  = wp_json_encode(
			self::snapshot( $form_id, $entry_id, FormRelay_Settings::form_template( $form_id ), $fields )
		);
		if ( false === $snapshot ) {
			// The sidecar reads an empty snapshot as missing and falls back to WPForms' entry.
			self::log( sprintf( 'FormRelay Bridge: form %d entry %d: the snapshot could not be encoded (JSON error %d); queued without it', $form_id, $entry_id, json_last_error() ) );
			$snapshot = '';
		}

		list( $snapshot, $seal_key, $unsealed ) = FormRelay_Seal::seal( $snapshot ); // No query.
		// Both from the autoloaded settings FormRelay_Settings::get() reads: no query.
		$row = array( $reference, $form_id, $entry_id, $snapshot, $seal_key, FormRelay_Settings::form_priority( $form_id ), FormRelay_Settings::form_partner( $form_id ) );
		for ( $attempt = 1; ; ++$attempt ) {
			list( $job_id, $errno ) = self::insert( $row );
			if ( null === $errno || ! in_array( $errno, self::RETRY_ERRNOS, true ) || $attempt >= self::INSERT_ATTEMPTS ) {
				break;
			}
			self::log( sprintf( 'FormRelay Bridge: form %d entry %d: MySQL error %d; retrying once', $form_id, $entry_id, $errno ) );
			usleep( wp_rand( 10000, 50000 ) ); // A jittered pause: the other transaction ends first.
		}
		if ( null !== $errno && self::ER_DUP_ENTRY !== $errno ) {
			self::log_failure( $form_id, $entry_id, sprintf( 'MySQL error %d', $errno ) );
		}
		if ( null !== $unsealed && $job_id > 0 ) {
			FormRelay_Seal::unsealed( $job_id, $form_id, $entry_id, $unsealed );
		}
		return $job_id;
	}

	/**
	 * One INSERT of the job row: (its id, null) or (0, the MySQL error number).
	 *
	 * @param array $row Reference, form id, entry id, snapshot, seal key (null: in clear), priority, partner ('' = the default).
	 * @return array{0: int, 1: int|null}
	 */
	private static function insert( array $row ) {
		global $wpdb;
		list( $reference, $form_id, $entry_id, $snapshot, $seal_key, $priority, $partner ) = $row;
		// A failed query must neither print nor log the query (it holds the values).
		$suppressed = $wpdb->suppress_errors( true );
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables, read fresh, never cached.
		$result = $wpdb->query(
			$wpdb->prepare(
				"INSERT INTO {$wpdb->prefix}formrelay_jobs (reference, source, partner, form_id, entry_id, snapshot, seal_key, status, phase, priority, attempts, max_attempts, next_attempt_at, created_at, updated_at) VALUES (%s, 'wpforms', %s, %d, %d, %s, NULLIF(%s, ''), 'pending', 'record', %d, 0, %d, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
				$reference,
				$partner,
				$form_id,
				$entry_id,
				$snapshot,
				(string) $seal_key,
				$priority,
				self::MAX_ATTEMPTS
			)
		);
		$errno  = false === $result ? self::mysql_errno() : null;
		$job_id = false === $result ? 0 : (int) $wpdb->insert_id;
		$wpdb->suppress_errors( $suppressed );
		return array( $job_id, $errno );
	}

	/**
	 * The snapshot the sidecar delivers from (see the file comment).
	 *
	 * @param int         $form_id  Form id.
	 * @param int         $entry_id Entry id (0: none stored).
	 * @param string|null $template Payload template for the sidecar, null for its default.
	 * @param mixed       $fields   The hook's fields, kept exactly as given.
	 * @return array
	 */
	public static function snapshot( $form_id, $entry_id, $template, $fields ) {
		return array(
			'version'  => self::SNAPSHOT_VERSION,
			'form_id'  => (int) $form_id,
			'entry_id' => (int) $entry_id,
			'template' => $template,
			'fields'   => $fields,
			'files'    => self::files( $fields ),
		);
	}

	/**
	 * Every uploaded file of every file-upload field, with its place on disk.
	 *
	 * Modern upload style: `value_raw` is a list of file arrays ("" when no
	 * file was uploaded). Classic style: one file whose keys sit on the field.
	 *
	 * @param mixed $fields The hook's fields.
	 * @return array<int, array<string, mixed>>
	 */
	public static function files( $fields ) {
		if ( ! is_array( $fields ) ) {
			return array();
		}
		$files  = array();
		$places = null;
		foreach ( $fields as $key => $field ) {
			if ( ! is_array( $field ) || ! isset( $field['type'] ) || self::FILE_FIELD !== $field['type'] ) {
				continue;
			}
			$field_id = isset( $field['id'] ) && is_scalar( $field['id'] ) ? (string) $field['id'] : (string) $key;
			if ( isset( $field['value_raw'] ) && is_array( $field['value_raw'] ) ) {
				$items = $field['value_raw'];
			} elseif ( ! empty( $field['file'] ) ) {
				$items = array( $field );
			} else {
				$items = array();
			}
			$position = 0;
			foreach ( $items as $item ) {
				if ( ! is_array( $item ) ) {
					continue;
				}
				if ( null === $places ) {
					$places = self::places();
				}
				$files[] = self::file( $field_id, $position, $item, $places );
				++$position;
			}
		}
		return $files;
	}

	/**
	 * One file's entry in the snapshot.
	 *
	 * @param string $field_id Field id.
	 * @param int    $position Index among the field's files.
	 * @param array  $item     WPForms' file array (a value_raw item, or the classic field).
	 * @param array  $places   See places().
	 * @return array<string, mixed>
	 */
	private static function file( $field_id, $position, array $item, array $places ) {
		$name = '';
		foreach ( array( 'file_user_name', 'file_original', 'name' ) as $key ) {
			if ( isset( $item[ $key ] ) && is_scalar( $item[ $key ] ) && '' !== (string) $item[ $key ] ) {
				$name = (string) $item[ $key ];
				break;
			}
		}
		$url           = isset( $item['value'] ) && is_string( $item['value'] ) ? $item['value'] : '';
		$attachment_id = isset( $item['attachment_id'] ) && is_numeric( $item['attachment_id'] ) ? absint( $item['attachment_id'] ) : 0;

		$path = '';
		if ( $attachment_id > 0 ) {
			$attached = get_attached_file( $attachment_id );
			$path     = is_string( $attached ) ? $attached : '';
		}
		if ( '' === $path ) {
			$path = self::stored_path( $item, $url, $places['root'] );
		}
		$size = null;
		if ( '' !== $path && is_file( $path ) ) {
			$bytes = filesize( $path );
			$size  = false === $bytes ? null : $bytes;
		}
		return array(
			'field_id'      => $field_id,
			'position'      => $position,
			'name'          => $name,
			'path'          => $path,
			'relative'      => self::relative( $path, $places['bases'] ),
			'url'           => $url,
			'attachment_id' => $attachment_id,
			'size'          => $size,
		);
	}

	/**
	 * Where WPForms stored a file: upload root / form folder / stored name.
	 *
	 * The form folder ({form_id}-{md5}) is the parent directory of the file's
	 * URL; the stored name is the `file` key. '' when either is missing or
	 * could leave the folder.
	 *
	 * @param array  $item WPForms' file array.
	 * @param string $url  The file's URL.
	 * @param string $root The WPForms upload root (no trailing slash).
	 * @return string
	 */
	private static function stored_path( array $item, $url, $root ) {
		$file     = isset( $item['file'] ) && is_string( $item['file'] ) ? $item['file'] : '';
		$url_path = (string) wp_parse_url( $url, PHP_URL_PATH );
		$folder   = '' === $url_path ? '' : rawurldecode( basename( dirname( $url_path ) ) );
		if ( ! self::safe_segment( $file ) || ! self::safe_segment( $folder ) ) {
			return '';
		}
		return $root . '/' . $folder . '/' . $file;
	}

	/**
	 * Whether a string is one plain path segment (no separator, not . or ..).
	 *
	 * @param string $segment Candidate.
	 * @return bool
	 */
	private static function safe_segment( $segment ) {
		return '' !== $segment && '.' !== $segment && '..' !== $segment
			&& strlen( $segment ) === strcspn( $segment, "/\\\0" );
	}

	/**
	 * A path relative to the uploads base directory, or '' when it is elsewhere.
	 *
	 * @param string   $path  Absolute path.
	 * @param string[] $bases The uploads base directory as configured and resolved.
	 * @return string
	 */
	private static function relative( $path, array $bases ) {
		if ( '' === $path ) {
			return '';
		}
		$path = wp_normalize_path( $path );
		foreach ( $bases as $base ) {
			$prefix = $base . '/';
			if ( strlen( $path ) > strlen( $prefix ) && 0 === strpos( $path, $prefix ) ) {
				return substr( $path, strlen( $prefix ) );
			}
		}
		return '';
	}

	/**
	 * The uploads base directory and WPForms' upload root, as WPForms finds
	 * its root in wpforms_upload_dir(): realpath(basedir)/wpforms, or what the
	 * `wpforms_upload_root` filter returns when that is a writable directory.
	 *
	 * @return array{root: string, bases: string[]}
	 */
	private static function places() {
		$uploads = wp_upload_dir( null, false );
		$basedir = untrailingslashit( (string) $uploads['basedir'] );
		$real    = '' === $basedir ? false : realpath( $basedir );
		$bases   = array( wp_normalize_path( $basedir ) );
		if ( false !== $real && ! in_array( wp_normalize_path( $real ), $bases, true ) ) {
			$bases[] = wp_normalize_path( $real );
		}

		$root   = trailingslashit( false !== $real ? $real : $basedir ) . 'wpforms';
		$custom = apply_filters( 'wpforms_upload_root', $root );
		if ( is_string( $custom ) && '' !== $custom && is_dir( $custom ) && wp_is_writable( $custom ) ) {
			$resolved = wp_is_stream( $custom ) ? $custom : realpath( $custom );
			$root     = false === $resolved ? $custom : $resolved;
		}
		return array(
			'root'  => untrailingslashit( $root ),
			'bases' => $bases,
		);
	}

	/**
	 * The form id from the form data (or WPForms' entry array); 0 if neither has one.
	 *
	 * @param mixed $entry     The hook's entry.
	 * @param mixed $form_data The hook's form data.
	 * @return int
	 */
	private static function form_id( $entry, $form_data ) {
		foreach ( array( $form_data, $entry ) as $source ) {
			if ( is_array( $source ) && isset( $source['id'] ) && is_numeric( $source['id'] ) && absint( $source['id'] ) > 0 ) {
				return absint( $source['id'] );
			}
		}
		return 0;
	}

	/**
	 * The last MySQL error number on WordPress's connection (0 when unknown).
	 *
	 * @return int
	 */
	private static function mysql_errno() {
		global $wpdb;
		$dbh = $wpdb->dbh; // Protected, but readable through wpdb::__get().
		return $dbh instanceof mysqli ? (int) mysqli_errno( $dbh ) : 0; // phpcs:ignore WordPress.DB.RestrictedFunctions.mysql_mysqli_errno -- the number only, never the message.
	}

	/**
	 * Log that a submission was not queued: ids and a reason, never a value.
	 *
	 * @param int    $form_id  Form id.
	 * @param int    $entry_id Entry id.
	 * @param string $reason   E.g. "MySQL error 1146".
	 * @return void
	 */
	private static function log_failure( $form_id, $entry_id, $reason ) {
		self::log( sprintf( 'FormRelay Bridge: could not queue form %d entry %d (%s)', $form_id, $entry_id, $reason ) );
	}

	/**
	 * Write one line to the PHP error log.
	 *
	 * @param string $message Ids and reasons only.
	 * @return void
	 */
	private static function log( $message ) {
		error_log( $message ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
	}
}
