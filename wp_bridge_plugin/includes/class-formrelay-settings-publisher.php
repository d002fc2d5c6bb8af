<?php
/**
 * Publishing the delivery settings for the sidecar: one versioned JSON row.
 *
 * The sidecar creates jobs by itself too (the sweep's reconciliation,
 * `formrelay backfill`) and renders jobs that carry no snapshot; it obeys the
 * same settings capture does by reading this row of {prefix}formrelay_meta:
 *
 *     name  = 'delivery_settings'
 *     value = {"version":1,"active":true,"active_since":"2026-12-05 09:00:00.000",
 *              "forms":"all"|[12,14],
 *              "form_settings":{"12":{"template":"intake.json.j2"|null,"priority":5,
 *                                     "partner":"ehr"|null}},
 *              "selected_since":{"12":"2026-12-05 09:00:00.000","*":"..."}}
 *
 * `selected_since` says since when each form is delivered (`*`: the forms that
 * "all forms" covers): a form keeps its time while it stays delivered and gets
 * "now" when it is added, so the sweep never reconciles entries stored before
 * their form was chosen.
 *
 * Written whenever the option is added, updated or deleted (any update_option()
 * path), on activation (active, since now), on deactivation (inactive: the
 * sidecar then creates no job), and on admin_init when the row is missing or
 * differs (an upgrade from a version that never wrote it). The contract is
 * tests/fixtures/delivery_settings/*.json, read by the PHP and Python tests.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Writes the delivery settings row the sidecar reads.
 */
final class FormRelay_Settings_Publisher {

	const META_NAME = 'delivery_settings';
	const VERSION   = 1;

	/**
	 * Hook the option's add/update/delete and admin_init.
	 *
	 * @return void
	 */
	public static function register() {
		$option = FormRelay_Settings::OPTION;
		add_action( "add_option_{$option}", array( __CLASS__, 'changed' ) );
		add_action( "update_option_{$option}", array( __CLASS__, 'changed' ) );
		add_action( "delete_option_{$option}", array( __CLASS__, 'changed' ) );
		add_action( 'admin_init', array( __CLASS__, 'maybe_publish' ) );
	}

	/**
	 * The option changed: publish (the plugin is running, so it is active).
	 *
	 * @return void
	 */
	public static function changed() {
		self::publish( true );
	}

	/**
	 * Activation: active from now (unless the row already says active).
	 *
	 * @return void
	 */
	public static function activate() {
		self::publish( true );
	}

	/**
	 * Deactivation: the sidecar stops creating jobs; queued ones still finish.
	 *
	 * @return void
	 */
	public static function deactivate() {
		self::publish( false );
	}

	/**
	 * The admin_init check: write the row when it is missing or differs.
	 *
	 * @return void
	 */
	public static function maybe_publish() {
		self::publish( true );
	}

	/**
	 * The document to publish for these settings.
	 *
	 * @param array  $settings       FormRelay_Settings::get().
	 * @param bool   $active         Whether the plugin is active.
	 * @param string $active_since   UTC 'Y-m-d H:i:s.v' of the activation.
	 * @param array  $selected_since Form id (or '*') => UTC time its delivery began.
	 * @return array
	 */
	public static function document( array $settings, $active, $active_since, array $selected_since = array() ) {
		$form_settings = array();
		foreach ( $settings['form_settings'] as $form_id => $one ) {
			$form_settings[ (string) $form_id ] = array(
				'template' => '' === $one['template'] ? null : $one['template'],
				'priority' => (int) $one['priority'],
				'partner'  => '' === $one['partner'] ? null : $one['partner'],
			);
		}
		return array(
			'version'        => self::VERSION,
			'active'         => (bool) $active,
			'active_since'   => $active_since,
			'forms'          => 'all' === $settings['forms'] ? 'all' : array_values( array_map( 'intval', $settings['forms'] ) ),
			'form_settings'  => (object) $form_settings,
			'selected_since' => (object) $selected_since,
		);
	}

	/**
	 * Since when each delivered form is delivered: kept from the previous row for a
	 * form delivered before, `$now` for a form just added (or for "all forms" just chosen).
	 *
	 * @param string|int[] $forms 'all' or the delivered form ids.
	 * @param mixed        $old   The previous row, decoded (null: none).
	 * @param string       $now   UTC 'Y-m-d H:i:s.v'.
	 * @return array<string, string>
	 */
	public static function selected_since( $forms, $old, $now ) {
		$since = array();
		if ( 'all' === $forms ) {
			$was_all    = is_array( $old ) && isset( $old['forms'] ) && 'all' === $old['forms'];
			$kept       = self::since_in( '*', $old );
			$since['*'] = '' === $kept ? $now : $kept;
			$listed     = is_array( $old ) && isset( $old['forms'] ) && is_array( $old['forms'] ) ? $old['forms'] : array();
			$earlier    = $was_all && isset( $old['selected_since'] ) && is_array( $old['selected_since'] ) ? array_keys( $old['selected_since'] ) : $listed;
			foreach ( $earlier as $form_id ) {
				$kept = self::since_in( (string) $form_id, $old );
				if ( '' !== $kept ) {
					$since[ (string) $form_id ] = $kept;
				}
			}
			return $since;
		}
		foreach ( $forms as $form_id ) {
			$kept                       = self::since_in( (string) $form_id, $old );
			$since[ (string) $form_id ] = '' === $kept ? $now : $kept;
		}
		return $since;
	}

	/**
	 * Since when the previous row delivered this form ('*': "all forms"); '' if it did not.
	 *
	 * @param string $key Form id as a string, or '*'.
	 * @param mixed  $old The previous row, decoded.
	 * @return string
	 */
	private static function since_in( $key, $old ) {
		if ( ! is_array( $old ) || ! isset( $old['forms'] ) ) {
			return '';
		}
		$map      = isset( $old['selected_since'] ) && is_array( $old['selected_since'] ) ? $old['selected_since'] : array();
		$fallback = isset( $old['active_since'] ) && is_string( $old['active_since'] ) ? $old['active_since'] : '';
		if ( 'all' === $old['forms'] ) {
			if ( isset( $map[ $key ] ) && is_string( $map[ $key ] ) ) {
				return $map[ $key ];
			}
			return isset( $map['*'] ) && is_string( $map['*'] ) ? $map['*'] : $fallback;
		}
		if ( '*' === $key || ! is_array( $old['forms'] ) || ! in_array( (int) $key, array_map( 'intval', $old['forms'] ), true ) ) {
			return '';
		}
		return isset( $map[ $key ] ) && is_string( $map[ $key ] ) ? $map[ $key ] : $fallback;
	}

	/**
	 * Write the row when its content would change (one SELECT otherwise).
	 *
	 * Going active keeps the stored active_since when the row already says
	 * active, else it is now; going inactive keeps it.
	 *
	 * @param bool $active Whether the plugin is active.
	 * @return void
	 */
	private static function publish( $active ) {
		global $wpdb;
		$suppressed = $wpdb->suppress_errors( true ); // No tables yet: the schema notice says so.
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables, read fresh, never cached.
		$stored = $wpdb->get_var(
			$wpdb->prepare( "SELECT value FROM {$wpdb->prefix}formrelay_meta WHERE name = %s", self::META_NAME )
		);
		$failed = '' !== $wpdb->last_error;
		if ( ! $failed ) {
			$old   = is_string( $stored ) ? json_decode( $stored, true ) : null;
			$since = is_array( $old ) && isset( $old['active_since'] ) && is_string( $old['active_since'] ) ? $old['active_since'] : '';
			$clock = microtime( true );
			$now   = gmdate( 'Y-m-d H:i:s', (int) $clock ) . sprintf( '.%03d', (int) ( ( $clock - floor( $clock ) ) * 1000 ) );
			if ( '' === $since || ( $active && empty( $old['active'] ) ) ) {
				$since = $now;
			}
			$settings = FormRelay_Settings::get();
			$value    = wp_json_encode( self::document( $settings, $active, $since, self::selected_since( $settings['forms'], $old, $now ) ) );
			if ( $value !== $stored ) {
				// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables, read fresh, never cached.
				$wpdb->query(
					$wpdb->prepare(
						"INSERT INTO {$wpdb->prefix}formrelay_meta (name, value, updated_at) VALUES (%s, %s, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)",
						self::META_NAME,
						$value
					)
				);
			}
		}
		$wpdb->suppress_errors( $suppressed );
	}
}
