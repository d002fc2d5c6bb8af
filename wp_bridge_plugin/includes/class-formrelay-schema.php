<?php
/**
 * FormRelay's database schema, as the plugin applies it.
 *
 * The tables are defined once, in schema/NNNN_*.sql. The Python sidecar
 * (`formrelay migrate`) applies the same files with exactly the same rules, so
 * whichever runs first creates the tables and the other finds them current:
 *
 * - files named NNNN_*.sql, applied in numeric order; version = (int) NNNN;
 *   the highest number is the version this plugin knows;
 * - `{prefix}` is replaced with the WordPress table prefix;
 * - lines whose first non-blank characters are `--` are dropped;
 * - statements are split on a `;` that ends a line (regex /;\s*$/m);
 * - everything runs under GET_LOCK('formrelay_migrate', 30), released after;
 * - the current version is `value` of the `schema_version` row of
 *   {prefix}formrelay_meta (0 when the table or the row is missing);
 * - each newer file runs, then its number is recorded as schema_version.
 *
 * No dbDelta(): it cannot parse FOREIGN KEY constraints or generated columns.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

require_once __DIR__ . '/class-formrelay-schema-exception.php';

/**
 * Reads and applies the FormRelay migrations.
 */
final class FormRelay_Schema {

	const LOCK_NAME      = 'formrelay_migrate';
	const LOCK_TIMEOUT   = 30;
	const META_TABLE     = 'formrelay_meta';
	const VERSION_KEY    = 'schema_version';
	const OPTION_VERSION = 'formrelay_schema_version';
	const OPTION_ERROR   = 'formrelay_schema_error';

	/**
	 * The message of the last failed install() in this request, or ''.
	 *
	 * @var string
	 */
	private static $last_error = '';

	/**
	 * The directory holding the NNNN_*.sql migrations.
	 *
	 * @return string
	 */
	public static function schema_dir() {
		return FORMRELAY_BRIDGE_PATH . 'schema';
	}

	/**
	 * The migration files, version => path, in ascending version order.
	 *
	 * @param string|null $dir Directory to read (default: the plugin's schema/).
	 * @return array<int, string>
	 * @throws FormRelay_Schema_Exception When two files share a version number.
	 */
	public static function migrations( $dir = null ) {
		$dir   = null === $dir ? self::schema_dir() : $dir;
		$files = glob( rtrim( $dir, '/' ) . '/*.sql' );
		$found = array();
		foreach ( false === $files ? array() : $files as $path ) {
			if ( ! preg_match( '/^(\d{4})_.+\.sql$/', basename( $path ), $m ) ) {
				continue;
			}
			$version = (int) $m[1];
			if ( isset( $found[ $version ] ) ) {
				self::fail(
					sprintf( 'Two schema files have version %d: %s and %s.', $version, basename( $found[ $version ] ), basename( $path ) )
				);
			}
			$found[ $version ] = $path;
		}
		ksort( $found, SORT_NUMERIC );
		return $found;
	}

	/**
	 * The highest schema version this plugin ships (0 if it ships none).
	 *
	 * @return int
	 */
	public static function known_version() {
		try {
			$migrations = self::migrations();
		} catch ( FormRelay_Schema_Exception $e ) {
			return 0;
		}
		return $migrations ? (int) max( array_keys( $migrations ) ) : 0;
	}

	/**
	 * The SQL statements of one migration file's text.
	 *
	 * @param string $sql    The file's contents.
	 * @param string $prefix The table prefix that replaces {prefix}.
	 * @return string[]
	 */
	public static function statements( $sql, $prefix ) {
		$sql  = str_replace( '{prefix}', $prefix, $sql );
		$kept = array();
		foreach ( explode( "\n", $sql ) as $line ) {
			if ( 0 === strpos( ltrim( $line ), '--' ) ) {
				continue;
			}
			$kept[] = $line;
		}
		$statements = array();
		foreach ( preg_split( '/;\s*$/m', implode( "\n", $kept ) ) as $part ) {
			$part = trim( $part );
			if ( '' !== $part ) {
				$statements[] = $part;
			}
		}
		return $statements;
	}

	/**
	 * The schema version recorded in the database (0: no meta table or no row).
	 *
	 * @return int
	 * @throws FormRelay_Schema_Exception When the database cannot be read or holds a non-number.
	 */
	public static function current_version() {
		global $wpdb;
		$table = $wpdb->prefix . self::META_TABLE;
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables; read fresh, never cached.
		$exists = $wpdb->get_var(
			$wpdb->prepare(
				'SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s',
				$table
			)
		);
		if ( '' !== $wpdb->last_error ) {
			self::fail( 'Could not check for table ' . $table . ': ' . $wpdb->last_error );
		}
		if ( 0 === (int) $exists ) {
			return 0;
		}
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching, WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the plugin's own tables; read fresh, never cached; the table is the prefix plus a constant (identifier placeholders need WordPress 6.2).
		$value = $wpdb->get_var( $wpdb->prepare( "SELECT value FROM {$table} WHERE name = %s", self::VERSION_KEY ) );
		if ( '' !== $wpdb->last_error ) {
			self::fail( 'Could not read the schema version from ' . $table . ': ' . $wpdb->last_error );
		}
		if ( null === $value ) {
			return 0;
		}
		$value = trim( (string) $value );
		if ( ! ctype_digit( $value ) ) {
			self::fail(
				sprintf( 'The schema_version in %s is not a number (%d characters).', $table, strlen( $value ) )
			);
		}
		return (int) $value;
	}

	/**
	 * Create or upgrade the tables. Never throws and never prints.
	 *
	 * On success the database version is stored in the option
	 * formrelay_schema_version and formrelay_schema_error is cleared; on failure
	 * the reason is stored in formrelay_schema_error (shown as an admin notice)
	 * and logged. A database newer than this plugin is left alone.
	 *
	 * @return bool Whether the schema is now at least the version this plugin knows.
	 */
	public static function install() {
		global $wpdb;
		self::$last_error = '';
		// Errors are collected from $wpdb->last_error; printing them would
		// count as "unexpected output" during activation.
		$suppressed = $wpdb->suppress_errors( true );
		try {
			$current = self::migrate_locked();
			// When $current > the known version the database is newer than this
			// plugin: nothing is changed; the stored version drives the admin notice.
			update_option( self::OPTION_VERSION, (string) $current );
			delete_option( self::OPTION_ERROR );
			return true;
		} catch ( FormRelay_Schema_Exception $e ) {
			self::$last_error = $e->getMessage();
			update_option( self::OPTION_ERROR, self::$last_error, false );
			error_log( 'FormRelay Bridge: schema install failed: ' . self::$last_error ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
			return false;
		} finally {
			$wpdb->suppress_errors( $suppressed );
		}
	}

	/**
	 * Under the migration lock, apply every migration newer than the database.
	 *
	 * @throws FormRelay_Schema_Exception When a file, the lock or a statement fails.
	 * @return int The database's schema version afterwards.
	 */
	private static function migrate_locked() {
		global $wpdb;
		$migrations = self::migrations();
		if ( ! $migrations ) {
			self::fail( 'No schema files (NNNN_*.sql) found in ' . self::schema_dir() . '.' );
		}
		$known = (int) max( array_keys( $migrations ) );

		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- a named lock, nothing to cache.
		$got = $wpdb->get_var( $wpdb->prepare( 'SELECT GET_LOCK(%s, %d)', self::LOCK_NAME, self::LOCK_TIMEOUT ) );
		if ( '1' !== (string) $got ) {
			self::fail(
				sprintf(
					'Could not get the database lock "%s" within %d seconds; is another FormRelay migration running?%s',
					self::LOCK_NAME,
					self::LOCK_TIMEOUT,
					'' !== $wpdb->last_error ? ' ' . $wpdb->last_error : ''
				)
			);
		}
		try {
			$current = self::current_version();
			if ( $current > $known ) {
				return $current;
			}
			foreach ( $migrations as $version => $path ) {
				if ( $version > $current ) {
					self::apply( $version, $path );
					$current = $version;
				}
			}
			return $current;
		} finally {
			// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- a named lock, nothing to cache.
			$wpdb->query( $wpdb->prepare( 'SELECT RELEASE_LOCK(%s)', self::LOCK_NAME ) );
		}
	}

	/**
	 * Run one migration file's statements, then record its version.
	 *
	 * @param int    $version The file's number.
	 * @param string $path    The file.
	 * @throws FormRelay_Schema_Exception When the file cannot be read or a statement fails.
	 * @return void
	 */
	private static function apply( $version, $path ) {
		global $wpdb;
		$sql = file_get_contents( $path ); // phpcs:ignore WordPress.WP.AlternativeFunctions.file_get_contents_file_get_contents -- a local file.
		if ( false === $sql ) {
			self::fail( 'Could not read schema file ' . basename( $path ) . '.' );
		}
		foreach ( self::statements( $sql, $wpdb->prefix ) as $index => $statement ) {
			// DDL from the plugin's own files: no user values to prepare.
			$wpdb->query( $statement ); // phpcs:ignore WordPress.DB.PreparedSQL.NotPrepared, WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching
			if ( '' !== $wpdb->last_error ) {
				self::fail(
					sprintf( '%s, statement %d (%s): %s', basename( $path ), $index + 1, self::summary( $statement ), $wpdb->last_error )
				);
			}
		}
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own table, written once per migration.
		$wpdb->query(
			$wpdb->prepare(
				"INSERT INTO {$wpdb->prefix}formrelay_meta (name, value, updated_at) VALUES ('schema_version', %s, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)",
				(string) $version
			)
		);
		if ( '' !== $wpdb->last_error ) {
			self::fail(
				sprintf( 'Could not record schema version %d: %s', $version, $wpdb->last_error )
			);
		}
	}

	/**
	 * Stop a schema step. The message is plain text for the PHP error log and
	 * the option behind the admin notice, which escapes it when shown.
	 *
	 * @param string $message Which step failed and why (no row data).
	 * @throws FormRelay_Schema_Exception Always.
	 * @return never
	 */
	private static function fail( $message ) {
		throw new FormRelay_Schema_Exception( $message ); // phpcs:ignore WordPress.Security.EscapeOutput.ExceptionNotEscaped -- plain text; render_notices() escapes it.
	}

	/**
	 * Activation hook: install the schema or stop activation with the reason.
	 *
	 * Calling wp_die() leaves the plugin inactive and shows the message (with a link
	 * back) instead of a white screen or a half-installed plugin.
	 *
	 * @return void
	 */
	public static function activate() {
		if ( self::install() ) {
			return;
		}
		wp_die(
			esc_html(
				sprintf(
					/* translators: %s: why the database tables could not be created. */
					__( 'FormRelay Bridge could not create or upgrade its database tables: %s', 'formrelay-bridge' ),
					self::$last_error
				)
			),
			esc_html__( 'FormRelay Bridge activation failed', 'formrelay-bridge' ),
			array(
				'response'  => 500,
				'back_link' => true,
			)
		);
	}

	/**
	 * On admin requests: apply migrations a plugin update brought (WordPress
	 * runs no activation hook on update). Costs one option read otherwise.
	 *
	 * @return void
	 */
	public static function maybe_upgrade() {
		if ( ! current_user_can( 'activate_plugins' ) ) {
			return;
		}
		if ( (int) get_option( self::OPTION_VERSION, 0 ) >= self::known_version() ) {
			return;
		}
		self::install();
	}

	/**
	 * The message of the last failed install() in this request, or ''.
	 *
	 * @return string
	 */
	public static function last_error() {
		return self::$last_error;
	}

	/**
	 * Notices for administrators: an install failure, a database newer than the plugin.
	 *
	 * @return array<int, array{type: string, message: string}> Plain-text messages.
	 */
	public static function notices() {
		$notices = array();
		$error   = (string) get_option( self::OPTION_ERROR, '' );
		if ( '' !== $error ) {
			$notices[] = array(
				'type'    => 'error',
				/* translators: %s: why the database tables could not be created. */
				'message' => sprintf( __( 'FormRelay Bridge could not set up its database tables: %s', 'formrelay-bridge' ), $error ),
			);
		}
		$known = self::known_version();
		// What install() last saw, or what the sidecar has migrated to since.
		$stored = max( (int) get_option( self::OPTION_VERSION, 0 ), self::peek_version() );
		if ( $stored > $known ) {
			$notices[] = array(
				'type'    => 'warning',
				'message' => sprintf(
					/* translators: 1: schema version in the database, 2: highest version this plugin knows. */
					__( 'The FormRelay database schema is at version %1$d, newer than this FormRelay Bridge knows (%2$d). Update the plugin to match the FormRelay sidecar.', 'formrelay-bridge' ),
					$stored,
					$known
				),
			);
		}
		return $notices;
	}

	/**
	 * Print the notices (hooked to admin_notices).
	 *
	 * @return void
	 */
	public static function render_notices() {
		if ( ! current_user_can( 'activate_plugins' ) ) {
			return;
		}
		foreach ( self::notices() as $notice ) {
			printf(
				'<div class="notice notice-%1$s formrelay-notice"><p>%2$s</p></div>',
				esc_attr( $notice['type'] ),
				esc_html( $notice['message'] )
			);
		}
	}

	/**
	 * The recorded schema version, read without the lock; 0 on any error.
	 *
	 * @return int
	 */
	private static function peek_version() {
		global $wpdb;
		$suppressed = $wpdb->suppress_errors( true );
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables; read fresh, never cached.
		$value  = $wpdb->get_var(
			$wpdb->prepare( "SELECT value FROM {$wpdb->prefix}formrelay_meta WHERE name = %s", self::VERSION_KEY )
		);
		$failed = '' !== $wpdb->last_error;
		$wpdb->suppress_errors( $suppressed );
		if ( $failed || null === $value || ! ctype_digit( trim( (string) $value ) ) ) {
			return 0;
		}
		return (int) $value;
	}

	/**
	 * The start of a statement, for error messages.
	 *
	 * @param string $statement SQL.
	 * @return string
	 */
	private static function summary( $statement ) {
		$one_line = preg_replace( '/\s+/', ' ', $statement );
		return strlen( $one_line ) > 60 ? substr( $one_line, 0, 60 ) . '...' : $one_line;
	}
}
