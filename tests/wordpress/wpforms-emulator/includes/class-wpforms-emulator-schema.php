<?php
/**
 * WPForms Pro's three entry tables, made on activation with dbDelta as WPForms does.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The entry tables' DDL and the activation hook.
 */
final class WPForms_Emulator_Schema {

	/**
	 * The CREATE TABLE statements: the DDL of WPForms Pro 1.9.1.4, one
	 * definition a line (dbDelta compares an existing table line by line).
	 *
	 * @param string $prefix          Table prefix.
	 * @param string $charset_collate "DEFAULT CHARACTER SET ... COLLATE ...".
	 *
	 * @return string[] Table name => statement.
	 */
	public static function statements( string $prefix, string $charset_collate ): array {
		return array(
			"{$prefix}wpforms_entries"      => "CREATE TABLE {$prefix}wpforms_entries (
entry_id bigint(20) NOT NULL AUTO_INCREMENT,
form_id bigint(20) NOT NULL,
post_id bigint(20) NOT NULL,
user_id bigint(20) NOT NULL,
status varchar(30) NOT NULL,
type varchar(30) NOT NULL,
viewed tinyint(1) DEFAULT 0,
starred tinyint(1) DEFAULT 0,
fields longtext NOT NULL,
meta longtext NOT NULL,
date datetime NOT NULL,
date_modified datetime NOT NULL,
ip_address varchar(128) NOT NULL,
user_agent varchar(256) NOT NULL,
user_uuid varchar(36) NOT NULL,
PRIMARY KEY  (entry_id),
KEY form_id (form_id)
) $charset_collate;",
			"{$prefix}wpforms_entry_fields" => "CREATE TABLE {$prefix}wpforms_entry_fields (
id bigint(20) NOT NULL AUTO_INCREMENT,
entry_id bigint(20) NOT NULL,
form_id bigint(20) NOT NULL,
field_id varchar(16) NOT NULL,
value longtext NOT NULL,
date datetime NOT NULL,
PRIMARY KEY  (id),
KEY entry_id (entry_id),
KEY form_id (form_id),
KEY field_id (field_id)
) $charset_collate;",
			"{$prefix}wpforms_entry_meta"   => "CREATE TABLE {$prefix}wpforms_entry_meta (
id bigint(20) NOT NULL AUTO_INCREMENT,
entry_id bigint(20) NOT NULL,
form_id bigint(20) NOT NULL,
user_id bigint(20) NOT NULL,
status varchar(30) NOT NULL,
type varchar(255) NOT NULL,
data longtext NOT NULL,
date datetime NOT NULL,
PRIMARY KEY  (id),
KEY entry_id (entry_id)
) $charset_collate;",
		);
	}

	/**
	 * Activation: refuse next to the real WPForms, create or update the tables.
	 */
	public static function activate(): void {
		if ( WPForms_Emulator::real_wpforms_present() ) {
			wp_die(
				esc_html__( 'The WPForms Emulator is a test tool and cannot run next to the real WPForms. Deactivate one of them.', 'wpforms-emulator' ),
				esc_html__( 'Plugin could not be activated', 'wpforms-emulator' ),
				array( 'back_link' => true )
			);
		}
		self::install();
		add_option( WPForms_Emulator::MODE_OPTION, 'pro' );
	}

	/**
	 * Run dbDelta over the three statements; returns what dbDelta reports it did.
	 *
	 * @return string[]
	 */
	public static function install(): array {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$done = array();
		foreach ( self::statements( $wpdb->prefix, $wpdb->get_charset_collate() ) as $statement ) {
			$done = array_merge( $done, dbDelta( $statement ) );
		}
		return $done;
	}
}
