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
 *              "form_settings":{"12":{"template":"intake.json.j2"|null,"priority":5}}}
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
	 * @param array  $settings     FormRelay_Settings::get().
	 * @param bool   $active       Whether the plugin is active.
	 * @param string $active_since UTC 'Y-m-d H:i:s.v' of the activation.
	 * @return array
	 */
	public static function document( array $settings, $active, $active_since ) {
		$form_settings = array();
		foreach ( $settings['form_settings'] as $form_id => $one ) {
			$form_settings[ (string) $form_id ] = array(
				'template' => '' === $one['template'] ? null : $one['template'],
				'priority' => (int) $one['priority'],
			);
		}
		return array(
			'version'       => self::VERSION,
			'active'        => (bool) $active,
			'active_since'  => $active_since,
			'forms'         => 'all' === $settings['forms'] ? 'all' : array_values( array_map( 'intval', $settings['forms'] ) ),
			'form_settings' => (object) $form_settings,
		);
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
		$stored     = $wpdb->get_var(
			$wpdb->prepare( "SELECT value FROM {$wpdb->prefix}formrelay_meta WHERE name = %s", self::META_NAME )
		);
		$failed     = '' !== $wpdb->last_error;
		if ( ! $failed ) {
			$old   = is_string( $stored ) ? json_decode( $stored, true ) : null;
			$since = is_array( $old ) && isset( $old['active_since'] ) && is_string( $old['active_since'] ) ? $old['active_since'] : '';
			if ( '' === $since || ( $active && empty( $old['active'] ) ) ) {
				$now   = microtime( true );
				$since = gmdate( 'Y-m-d H:i:s', (int) $now ) . sprintf( '.%03d', (int) ( ( $now - floor( $now ) ) * 1000 ) );
			}
			$value = wp_json_encode( self::document( FormRelay_Settings::get(), $active, $since ) );
			if ( $value !== $stored ) {
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
